// Frames: `poselab extract-frames` as a job (videos, method, number, range, a crop drawn on
// the video's first frame) with its progress, and the extracted frames as a grid; a frame
// opens in the labeler.

import { api, enc, post, projectPath } from '../api.js';
import { $, action, clear, h, toast } from '../dom.js';
import { jobRow } from '../jobs.js';

function cropTool(app, videoSelect, onCrop) {
  const canvas = h('canvas', { id: 'crop-canvas' });
  const stage = h('div', { class: 'crop-stage', hidden: true }, canvas);
  const ctx = canvas.getContext('2d');
  let image = null;
  let rect = null;
  let start = null;

  const draw = () => {
    if (!image) return;
    ctx.drawImage(image, 0, 0);
    if (!rect) return;
    ctx.fillStyle = '#0008';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(image, rect.x1, rect.y1, rect.x2 - rect.x1, rect.y2 - rect.y1,
      rect.x1, rect.y1, rect.x2 - rect.x1, rect.y2 - rect.y1);
    ctx.strokeStyle = '#4da3ff';
    ctx.lineWidth = Math.max(1, canvas.width / 400);
    ctx.strokeRect(rect.x1, rect.y1, rect.x2 - rect.x1, rect.y2 - rect.y1);
  };
  const toImage = (e) => {
    const r = canvas.getBoundingClientRect();
    const x = Math.round(((e.clientX - r.left) / r.width) * canvas.width);
    const y = Math.round(((e.clientY - r.top) / r.height) * canvas.height);
    return [Math.max(0, Math.min(canvas.width, x)), Math.max(0, Math.min(canvas.height, y))];
  };
  canvas.addEventListener('pointerdown', (e) => {
    start = toImage(e);
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!start) return;
    const [x, y] = toImage(e);
    rect = { x1: Math.min(start[0], x), x2: Math.max(start[0], x), y1: Math.min(start[1], y), y2: Math.max(start[1], y) };
    draw();
  });
  canvas.addEventListener('pointerup', () => {
    start = null;
    if (rect && (rect.x2 - rect.x1 < 8 || rect.y2 - rect.y1 < 8)) rect = null;
    draw();
    onCrop(rect ? [rect.x1, rect.x2, rect.y1, rect.y2] : null);
  });

  async function show() {
    const bitmap = await fetch(`${projectPath(app.pid)}/videos/${videoSelect()}/thumb?full=1`).then((r) => {
      if (!r.ok) throw new Error(`cannot read the video's first frame (HTTP ${r.status})`);
      return r.blob();
    }).then((b) => createImageBitmap(b));
    image = bitmap;
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    rect = null;
    stage.hidden = false;
    draw();
  }
  return { stage, show, clear: () => { rect = null; draw(); onCrop(null); } };
}

function extractForm(app, info) {
  const usable = info.videos.filter((v) => v.exists);
  const boxes = usable.map((v) => h('label', { class: 'tool' },
    h('input', { type: 'checkbox', value: v.id, checked: true, class: 'extract-video' }), ` ${v.name}`));
  const method = h('select', { id: 'extract-method' },
    h('option', { value: 'kmeans' }, 'kmeans (visually diverse)'), h('option', { value: 'uniform' }, 'uniform (evenly spaced)'));
  // Empty fields keep config.yaml's numframes2pick, start and stop, as the CLI does.
  const n = h('input', { type: 'number', id: 'extract-n', min: 1, max: 1000, placeholder: 'config' });
  const start = h('input', { type: 'number', id: 'extract-start', min: 0, max: 1, step: 0.05, placeholder: 'config' });
  const stop = h('input', { type: 'number', id: 'extract-stop', min: 0, max: 1, step: 0.05, placeholder: 'config' });
  const seed = h('input', { type: 'number', id: 'extract-seed', min: 0, value: 0 });
  const cropText = h('span', { id: 'crop-text', class: 'mono' }, 'full frame');
  let crop = null;
  const picked = () => boxes.map((b) => b.querySelector('input')).filter((i) => i.checked).map((i) => Number(i.value));
  const tool = cropTool(app, () => picked()[0], (c) => {
    crop = c;
    cropText.textContent = c ? `x ${c[0]}–${c[1]}, y ${c[2]}–${c[3]}` : 'full frame';
  });
  return h('div', { class: 'card' },
    h('h2', {}, 'Extract frames to label'),
    usable.length ? h('div', { class: 'form-row' }, h('label', {}, 'Videos'), boxes)
      : h('p', { class: 'error' }, 'This project has no readable video: add videos on the Projects page.'),
    h('div', { class: 'form-row' }, h('label', { for: 'extract-method' }, 'Method'), method),
    h('div', { class: 'form-row' }, h('label', { for: 'extract-n' }, 'New frames per video'), n),
    h('div', { class: 'form-row' }, h('label', {}, 'Part of the video'), start, 'to', stop,
      h('span', { class: 'hint' }, 'fractions, 0 = start, 1 = end; empty: config.yaml\'s')),
    h('div', { class: 'form-row' }, h('label', { for: 'extract-seed' }, 'Seed'), seed),
    h('div', { class: 'form-row' }, h('label', {}, 'Crop'), cropText,
      action('Draw on the first video…', () => tool.show(), { class: 'small', id: 'crop-draw' }),
      h('button', { type: 'button', class: 'small', onclick: () => tool.clear() }, 'Full frame')),
    tool.stage,
    h('div', { class: 'actions' }, action('Extract frames', async () => {
      const videos = picked();
      if (crop && videos.length !== 1) throw new Error('a crop is drawn on one video: leave only that one checked');
      const value = (input) => (input.value === '' ? null : Number(input.value));
      await post(`${projectPath(app.pid)}/extract`, {
        videos, method: method.value, n: value(n), start: value(start), stop: value(stop),
        seed: Number(seed.value), crop,
      });
      toast('Extraction queued');
      app.jobs.poll();
    }, { class: 'primary', id: 'extract-start-button', disabled: !usable.length })),
    h('ol', { id: 'extract-jobs', class: 'jobs-inline' }));
}

function grid(app, folders) {
  if (!folders.length) return h('p', { class: 'empty' }, 'No frames yet.');
  return folders.map((f) => {
    const labeled = new Set(f.labeled);
    return h('section', { class: 'folder-grid', dataset: { folder: f.name } },
      h('h2', {}, `${f.name}: ${f.images.length} frames, ${f.labeled.length} labeled`),
      h('div', { class: 'grid' }, f.images.map((name) => h('a', {
        class: `frame-cell${labeled.has(name) ? ' labeled' : ''}`,
        href: app.labelUrl(`folder=${enc(f.name)}&frame=${enc(name)}`),
        title: 'open in the labeler',
      }, h('img', { loading: 'lazy', alt: name, src: `${projectPath(app.pid)}/folders/${enc(f.name)}/images/${enc(name)}?w=200` }),
      h('div', { class: 'caption' }, h('span', {}, name))))));
  });
}

export default {
  async mount(root, app) {
    const info = app.project;
    const folders = await api(`${projectPath(app.pid)}/folders`);
    const gridEl = h('div', { id: 'frames-grid' }, grid(app, folders));
    clear(root, extractForm(app, info), h('div', { class: 'actions' },
      h('a', { href: app.labelUrl(), class: 'button' }, 'Label these frames →')), gridEl);
    let seen = '';
    const update = async (jobs) => {
      const mine = jobs.filter((j) => j.project_id === app.pid && j.kind === 'extract').slice(0, 3);
      clear($('extract-jobs'), mine.map((j) => jobRow(j)));
      const signature = mine.map((j) => `${j.id}:${j.status}`).join();
      if (seen && signature !== seen) clear(gridEl, grid(app, await api(`${projectPath(app.pid)}/folders`)));
      seen = signature;
    };
    update(app.jobs.list);
    return { update };
  },
};
