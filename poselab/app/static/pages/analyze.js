// Analyze: pick a run and videos -> one job per video (`poselab analyze --report`, then
// `labeled-video` and `plot-trajectories`), progress per video; then per analysis the
// labeled video playing in the page, the trajectory plots, the quality report, and the
// outlier frames, each one click away from the labeler (video mode, at that frame).

import { api, enc, post, projectPath } from '../api.js';
import { $, action, clear, fmt, h, toast, zoom } from '../dom.js';
import { jobRow } from '../jobs.js';
import { player } from '../player.js';

function analyzeForm(app, data) {
  const run = h('select', { id: 'analyze-run' }, data.runs.map((r) => h('option', { value: r }, r)));
  const boxes = data.videos.filter((v) => v.exists).map((v) => h('label', { class: 'tool' },
    h('input', { type: 'checkbox', value: v.id, checked: true, class: 'analyze-video' }), ` ${v.name}`));
  const report = h('input', { type: 'checkbox', id: 'analyze-report', checked: true });
  return h('div', { class: 'card' },
    h('h2', {}, 'Analyze videos'),
    data.runs.length ? h('div', { class: 'form-row' }, h('label', { for: 'analyze-run' }, 'Model (run)'), run)
      : h('p', { class: 'error' }, 'No trained run yet: train one first.'),
    h('div', { class: 'form-row' }, h('label', {}, 'Videos'), boxes.length ? boxes : h('span', { class: 'error' }, 'no readable video')),
    h('div', { class: 'form-row' }, h('label', { for: 'analyze-report' }, 'Quality report'), report),
    h('p', { class: 'hint' }, 'Each video: predictions (.h5, DeepLabCut layout), a labeled video and trajectory plots, beside the video.'),
    h('div', { class: 'actions' }, action('Analyze', async () => {
      const videos = boxes.map((b) => b.querySelector('input')).filter((i) => i.checked).map((i) => Number(i.value));
      const jobs = await post(`${projectPath(app.pid)}/analyze`, { run: run.value, videos, report: report.checked });
      toast(`${jobs.length} video(s) queued`);
      app.jobs.poll();
    }, { class: 'primary', id: 'analyze-start', disabled: !data.runs.length || !boxes.length })),
    h('ol', { id: 'analyze-jobs', class: 'jobs-inline' }));
}

function analysisList(data, selected, onSelect) {
  const rows = [];
  for (const v of data.videos) {
    for (const a of v.analyses) {
      const key = `${v.id}/${a.h5}`;
      rows.push(h('tr', { class: `selectable${key === selected ? ' selected' : ''}`, dataset: { analysis: key }, onclick: () => onSelect(key) },
        h('td', {}, v.name), h('td', {}, a.run), h('td', { class: 'num' }, a.rows ?? '–'),
        h('td', { class: 'num' }, fmt(a.frames_per_second, 1)),
        h('td', {}, [a.labeled_video ? 'video' : null, a.plots.length ? 'plots' : null, a.report ? 'report' : null].filter(Boolean).join(', '))));
    }
  }
  if (!rows.length) return h('p', { class: 'empty' }, 'No analysis yet.');
  return h('table', { id: 'analyses-table' },
    h('thead', {}, h('tr', {}, h('th', {}, 'video'), h('th', {}, 'run'), h('th', { class: 'num' }, 'frames'),
      h('th', { class: 'num' }, 'frames/s'), h('th', {}, 'results'))),
    h('tbody', {}, rows));
}

async function outliersPanel(app, base, analysis, video) {
  const data = await api(`${base}/outliers`);
  const n = h('input', { type: 'number', id: 'outliers-n', min: 1, max: 500, value: Math.min(10, Math.max(1, data.count)) });
  const items = data.frames.map((f) => h('a', {
    class: 'outlier', href: app.labelUrl(`video=${video}&vframe=${f.index}`), dataset: { frame: f.index },
    title: 'open this frame in the labeler (E adds it to labeled-data)',
  }, h('img', { loading: 'lazy', alt: `frame ${f.index}`, src: `${base}/player/${f.index}` }),
  h('div', {}, `frame ${f.index}`), h('div', { class: 'hint' }, [f.jump ? 'jump' : null, f.low ? `p ${fmt(f.likelihood)}` : null].filter(Boolean).join(', '))));
  return h('section', { id: 'outliers' },
    h('h2', {}, `Frames to check: ${data.count} of ${data.n_frames}`),
    h('p', { class: 'hint' }, `A keypoint moves more than ${data.jump_px} px from the frame before, or its likelihood is under pcutoff ${data.pcutoff}. The least sure ones first; click one to open it in the labeler.`),
    items.length ? h('div', { class: 'outliers' }, items) : h('p', { class: 'empty' }, 'None: every frame passes both checks.'),
    data.count ? h('div', { class: 'actions' }, 'Extract', n, 'diverse ones into labeled-data with their predictions to correct',
      action('Extract outlier frames', async () => {
        await post(`${base}/outliers/extract`, { n: Number(n.value) });
        toast('Outlier extraction queued; then correct them in the labeler');
        app.jobs.poll();
      }, { id: 'outliers-extract' }),
      h('a', { href: app.labelUrl(`folder=${enc(analysis.video_name.replace(/\.[^.]+$/, ''))}`) }, 'Open them in the labeler →')) : null);
}

async function resultPanel(app, key, data) {
  const [vid, h5] = [Number(key.split('/')[0]), key.slice(key.indexOf('/') + 1)];
  const video = data.videos.find((v) => v.id === vid);
  const analysis = video && video.analyses.find((a) => a.h5 === h5);
  if (!analysis) return h('p', { class: 'empty' }, 'Pick an analysis.');
  const base = `${projectPath(app.pid)}/analyses/${vid}/${enc(h5)}`;
  const parts = [h('h2', {}, `${analysis.video_name} with ${analysis.run}`),
    h('p', { class: 'hint mono' }, h5)];
  const outliers = outliersPanel(app, base, analysis, vid).catch((err) => h('p', { class: 'error' }, err.message));
  try {
    const p = await player(base);
    parts.push(p.el);
    parts.destroy = p.destroy;
  } catch (err) {
    parts.push(h('p', { class: 'error' }, err.message));
  }
  if (analysis.plots.length) {
    parts.push(h('h2', {}, 'Trajectories'), h('div', { class: 'plots', id: 'plots' }, analysis.plots.map((name) => h('img', {
      src: `${base}/plots/${enc(name)}`, alt: name, title: name, onclick: () => zoom(`${base}/plots/${enc(name)}`),
    }))));
  }
  if (analysis.report) {
    parts.push(h('h2', {}, 'Quality report'),
      h('p', {}, h('a', { href: `${base}/report`, target: '_blank', rel: 'noopener' }, 'Open in a new tab')),
      h('iframe', { class: 'report-frame', id: 'report-frame', src: `${base}/report`, title: 'quality report' }));
  }
  parts.push(await outliers);
  return parts;
}

export default {
  async mount(root, app) {
    let data = await api(`${projectPath(app.pid)}/analyses`);
    const first = data.videos.find((v) => v.analyses.length);
    let selected = first ? `${first.id}/${first.analyses[0].h5}` : null;
    const listEl = h('div', { id: 'analyses' });
    const resultEl = h('div', { id: 'analysis-result', class: 'card' });
    let destroy = null;
    let seen = '';

    async function select(key) {
      selected = key;
      clear(listEl, analysisList(data, selected, select));
      if (destroy) destroy();
      const parts = await resultPanel(app, key, data);
      destroy = parts.destroy || null;
      clear(resultEl, parts);
    }
    clear(root, h('div', { class: 'columns' },
      h('div', {}, analyzeForm(app, data), h('div', { class: 'card' }, h('h2', {}, 'Results'), listEl)),
      resultEl));
    clear(listEl, analysisList(data, selected, select));
    if (selected) await select(selected);
    else clear(resultEl, h('p', { class: 'empty' }, 'Results appear here when an analysis is done.'));

    const update = async (jobs) => {
      const mine = jobs.filter((j) => j.project_id === app.pid && (j.kind === 'analyze' || j.kind === 'outliers'));
      const active = mine.filter((j) => j.status === 'running' || j.status === 'queued');
      const recent = mine.filter((j) => !active.includes(j)).slice(0, Math.max(0, 3 - active.length));
      clear($('analyze-jobs'), [...active, ...recent].map((j) => jobRow(j)));
      const signature = mine.map((j) => `${j.id}:${j.status}`).join();
      if (seen && signature !== seen) {
        data = await api(`${projectPath(app.pid)}/analyses`);
        // A finished analysis opens when none is shown; one being watched is left alone.
        const done = mine.find((j) => j.status === 'done' && j.kind === 'analyze');
        const key = selected || (done ? `${done.meta.video}/${done.meta.h5}` : null);
        const exists = data.videos.some((v) => v.analyses.some((a) => `${v.id}/${a.h5}` === key));
        if (exists && key !== selected) await select(key);
        else clear(listEl, analysisList(data, selected, select));
      }
      seen = signature;
    };
    update(app.jobs.list);
    return { update, destroy: () => destroy && destroy() };
  },
};
