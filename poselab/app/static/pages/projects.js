// Projects: the projects this app knows, opening a config.yaml, creating a project (videos
// picked with the file browser), and the `poselab info` facts of the current project.

import { api, post, projectPath } from '../api.js';
import { action, clear, fmt, h, toast } from '../dom.js';
import { pickFiles } from '../files.js';

function splitList(text) {
  return text.split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
}

function newProjectForm(app, onDone) {
  const name = h('input', { type: 'text', id: 'new-name', placeholder: 'e.g. openfield' });
  const experimenter = h('input', { type: 'text', id: 'new-experimenter', placeholder: 'your name' });
  const bodyparts = h('textarea', { id: 'new-bodyparts', rows: 3, placeholder: 'snout, leftear, rightear, tailbase' });
  const skeleton = h('textarea', { id: 'new-skeleton', rows: 2, placeholder: 'snout-leftear, snout-rightear' });
  const copy = h('input', { type: 'checkbox', id: 'new-copy' });
  const videos = [];
  const videoList = h('ul', { id: 'new-videos', class: 'hint' });
  const dirLabel = h('span', { id: 'new-dir', class: 'mono' }, '(choose a folder)');
  let directory = null;

  const showVideos = () => clear(videoList, videos.length ? videos.map((v) => h('li', {}, v)) : h('li', {}, 'no video yet'));
  showVideos();
  return h('div', { class: 'card', id: 'new-project' },
    h('h2', {}, 'New project'),
    h('div', { class: 'form-row' }, h('label', { for: 'new-name' }, 'Name'), name),
    h('div', { class: 'form-row' }, h('label', { for: 'new-experimenter' }, 'Experimenter'), experimenter),
    h('div', { class: 'form-row' }, h('label', {}, 'Videos'),
      action('Add videos…', async () => {
        const paths = await pickFiles({ kind: 'video', multiple: true, title: 'Videos of the project' });
        if (paths) for (const p of paths) if (!videos.includes(p)) videos.push(p);
        showVideos();
      }, { id: 'new-pick-videos' })),
    videoList,
    h('div', { class: 'form-row' }, h('label', { for: 'new-bodyparts' }, 'Bodyparts')), bodyparts,
    h('div', { class: 'form-row' }, h('label', { for: 'new-skeleton' }, 'Skeleton')), skeleton,
    h('p', { class: 'hint' }, 'Pairs of bodyparts joined by a line, e.g. snout-leftear; optional.'),
    h('div', { class: 'form-row' }, h('label', {}, 'Create in'),
      action('Choose folder…', async () => {
        const picked = await pickFiles({ kind: 'dir', title: 'Where to create the project folder' });
        if (picked) {
          [directory] = picked;
          dirLabel.textContent = directory;
        }
      }, { id: 'new-pick-dir' }), dirLabel),
    h('div', { class: 'form-row' }, h('label', { for: 'new-copy' }, 'Copy videos'), copy,
      h('span', { class: 'hint' }, 'unchecked: the project links to them')),
    h('div', { class: 'actions' }, action('Create project', async () => {
      const res = await post('api/projects/create', {
        name: name.value.trim(),
        experimenter: experimenter.value.trim(),
        videos,
        bodyparts: splitList(bodyparts.value),
        skeleton: splitList(skeleton.value).map((pair) => pair.split(/\s*-\s*/)),
        copy_videos: copy.checked,
        directory,
      });
      toast('Project created');
      onDone(res.id);
    }, { class: 'primary', id: 'new-create' })));
}

function facts(app, info) {
  const videos = info.videos.map((v) => h('tr', {},
    h('td', {}, v.id !== null && v.status === 'ok'
      ? h('img', { class: 'thumb', alt: v.name, src: `${projectPath(info.id)}/videos/${v.id}/thumb` }) : ''),
    h('td', {}, h('div', {}, v.name), h('div', { class: 'hint mono' }, v.path),
      v.in_config ? null : h('div', { class: 'warn' }, 'in videos/ but not in config.yaml')),
    h('td', { class: 'num' }, v.status === 'ok' ? v.frames : h('span', { class: 'error' }, v.status)),
    h('td', { class: 'num' }, v.status === 'ok' ? fmt(v.fps, 1) : ''),
    h('td', { class: 'num' }, v.status === 'ok' ? `${v.width}×${v.height}` : ''),
    h('td', {}, v.crop || '')));
  const folders = info.folders.map((f) => h('tr', {},
    h('td', {}, f.name),
    h('td', { class: 'num' }, `${f.labeled_frames} / ${f.images}`),
    h('td', { class: 'hint' }, Object.entries(f.per_bodypart).map(([b, n]) => `${b} ${n}`).join(', '))));
  return h('div', { id: 'project-facts' },
    h('div', { class: 'card' },
      h('h1', {}, info.task),
      h('div', { class: 'hint mono' }, info.config),
      h('p', {}, `Scorer ${info.scorer}, created ${info.date}. ${info.labeled_frames} labeled frames, ${info.runs} training run(s).`),
      h('p', {}, h('b', {}, 'Bodyparts: '), info.bodyparts.join(', ')),
      info.skeleton.length ? h('p', {}, h('b', {}, 'Skeleton: '), info.skeleton.map(([a, b]) => `${a}–${b}`).join(', ')) : null,
      h('div', { class: 'actions' },
        h('a', { href: `#/frames/${info.id}` }, 'Extract frames →'),
        h('a', { href: app.labelUrl() }, 'Label →'),
        h('a', { href: `#/train/${info.id}` }, 'Train →'),
        h('a', { href: `#/analyze/${info.id}` }, 'Analyze →'))),
    h('h2', {}, `Videos (${info.videos.length})`),
    h('table', { id: 'videos-table' },
      h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', {}, 'video'), h('th', { class: 'num' }, 'frames'),
        h('th', { class: 'num' }, 'fps'), h('th', { class: 'num' }, 'size'), h('th', {}, 'crop'))),
      h('tbody', {}, videos)),
    h('div', { class: 'actions' }, action('Add videos…', async () => {
      const paths = await pickFiles({ kind: 'video', multiple: true, title: 'Add videos to the project' });
      if (!paths) return;
      await post(`${projectPath(info.id)}/videos`, { videos: paths });
      toast(`${paths.length} video(s) added`);
      app.route();
    })),
    h('h2', {}, `Labeled data (${info.folders.length} folders)`),
    info.folders.length
      ? h('table', { id: 'folders-table' },
        h('thead', {}, h('tr', {}, h('th', {}, 'folder'), h('th', { class: 'num' }, 'labeled / frames'), h('th', {}, 'per bodypart'))),
        h('tbody', {}, folders))
      : h('p', { class: 'empty' }, 'No frames extracted yet: see Frames.'));
}

export default {
  async mount(root, app) {
    const [state, info] = await Promise.all([api('api/state'),
      app.pid ? api(projectPath(app.pid)) : null]);
    const open = async (pid) => {
      await app.setProject(pid);
      app.go('projects', pid);
    };
    const list = state.projects.map((p) => h('div', {
      class: `project-item${p.id === app.pid ? ' current' : ''}`, dataset: { project: p.id }, onclick: () => open(p.id),
    }, h('div', {}, h('b', {}, p.task || p.name)), h('div', { class: 'path' }, p.config),
    p.error ? h('div', { class: 'error' }, p.error) : null));
    const side = h('div', {},
      h('div', { class: 'card' },
        h('h2', {}, 'Projects'),
        list.length ? list : h('p', { class: 'empty' }, 'None yet: open a config.yaml or create a project.'),
        h('div', { class: 'actions' }, action('Open config.yaml…', async () => {
          const picked = await pickFiles({ kind: 'config', title: 'Open a project (its config.yaml)' });
          if (!picked) return;
          const res = await post('api/projects/open', { config: picked[0] });
          await open(res.id);
        }, { id: 'open-project' })),
        h('p', { class: 'hint' }, `The app may open folders under: ${state.roots.join(', ')}`)),
      newProjectForm(app, open));
    const main = info ? facts(app, info) : h('div', { class: 'card' },
      h('h1', {}, 'Welcome to poselab'),
      h('p', {}, 'Open a project (its config.yaml, DeepLabCut projects too) or create one from your videos. ',
        'Then extract frames, label them, train a model and analyze your videos, page by page.'));
    clear(root, h('div', { class: 'columns' }, side, main));
    return {
      update() {},
    };
  },
};
