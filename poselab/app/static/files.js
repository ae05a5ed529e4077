// The file browser: a dialog over GET api/files, which lists only folders inside the roots
// the app was started with, and in them only sub-folders, videos and config.yaml files.
//
// pickFiles({kind: 'config' | 'video' | 'dir', multiple}) resolves with the chosen paths
// (or null when closed). For 'dir' the folder shown is the answer.

import { api, enc } from './api.js';
import { clear, dialog, h } from './dom.js';

export function pickFiles({ kind, multiple = false, title, start = null }) {
  return dialog((close) => {
    const picked = new Set();
    const pathEl = h('div', { class: 'browser-path' });
    const list = h('ul', { class: 'browser-list', dataset: { kind } });
    const status = h('span', { class: 'hint' });
    const choose = h('button', { type: 'button', class: 'primary', disabled: kind !== 'dir' },
      kind === 'dir' ? 'Use this folder' : 'Choose');
    let here = null;

    async function show(path) {
      let data;
      try {
        data = await api(`api/files${path ? `?path=${enc(path)}` : ''}`);
      } catch (err) {
        status.textContent = err.message;
        return;
      }
      here = data.path;
      pathEl.textContent = data.path || 'Folders this app may open:';
      choose.disabled = kind === 'dir' ? !here : picked.size === 0;
      const rows = [];
      if (data.parent || data.path) {
        rows.push(h('li', { onclick: () => show(data.parent) }, h('span', { class: 'kind' }, 'up'), '..'));
      }
      for (const entry of data.entries) {
        const selectable = entry.kind === kind;
        const li = h('li', { class: picked.has(entry.path) ? 'picked' : '', dataset: { path: entry.path, kind: entry.kind } },
          h('span', { class: 'kind' }, entry.kind === 'dir' ? 'folder' : entry.kind), entry.name);
        li.onclick = () => {
          if (entry.kind === 'dir') {
            show(entry.path);
          } else if (selectable) {
            if (!multiple) picked.clear();
            if (picked.has(entry.path)) picked.delete(entry.path);
            else picked.add(entry.path);
            for (const other of list.children) other.classList.toggle('picked', picked.has(other.dataset.path));
            choose.disabled = picked.size === 0;
            status.textContent = `${picked.size} chosen`;
          }
        };
        if (entry.kind !== 'dir' && !selectable) li.classList.add('hint');
        rows.push(li);
      }
      if (!data.entries.length) rows.push(h('li', { class: 'hint' }, 'nothing to show here'));
      clear(list, rows);
    }

    choose.onclick = () => close(kind === 'dir' ? [here] : [...picked]);
    show(start);
    return h('div', { class: 'dialog', role: 'dialog' },
      h('h2', {}, title || 'Choose'),
      pathEl, list,
      h('div', { class: 'actions' }, choose, h('button', { type: 'button', onclick: () => close(null) }, 'Cancel'), status));
  });
}
