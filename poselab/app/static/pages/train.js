// Train: a preset (with the speed and accuracy measured for it in benchmarks/README.md) and
// options -> `poselab train` then `poselab evaluate --plot` as one job; the runs of the
// project with their state, live learning curve and ETA (from metrics.csv, redrawn by
// training after each epoch), Stop / Resume, and a run's evaluation (per split, per
// bodypart, images).

import { api, enc, post, projectPath } from '../api.js';
import { $, action, clear, duration, fmt, h, pct, toast, zoom } from '../dom.js';
import { jobRow } from '../jobs.js';

function presetPanel(presets) {
  const select = h('select', { id: 'train-preset' }, h('option', { value: '' }, '(built-in defaults)'),
    presets.presets.map((p) => h('option', { value: p.name }, p.name)));
  const panel = h('div', { id: 'preset-figures', class: 'figures' });
  const show = () => {
    const p = presets.presets.find((x) => x.name === select.value);
    if (!p) {
      clear(panel, h('p', { class: 'hint' }, 'poselab train with no preset: resnet50, ImageNet weights, 200 epochs (the options below change it).'));
      return;
    }
    const f = p.figures;
    clear(panel, h('p', {}, p.summary),
      f ? h('dl', {},
        h('dt', {}, 'accuracy'), h('dd', {}, f.accuracy),
        h('dt', {}, 'training'), h('dd', {}, f.training),
        f.analysis ? [h('dt', {}, 'analysis'), h('dd', {}, f.analysis)] : null,
        h('dt', {}, 'measured'), h('dd', {}, `${f.measured} on a ${presets.machine}; see benchmarks/README.md`))
        : h('p', { class: 'hint' }, 'Not measured yet.'));
  };
  select.onchange = show;
  const best = presets.presets.find((p) => p.name === 'fast_lite0');
  if (best) select.value = best.name;
  show();
  return { select, panel };
}

function trainForm(app, presets) {
  const { select, panel } = presetPanel(presets);
  const field = (id, attrs) => h('input', { id, ...attrs });
  const epochs = field('train-epochs', { type: 'number', min: 1, placeholder: 'preset' });
  const minutes = field('train-minutes', { type: 'number', min: 0.1, step: 0.1, placeholder: 'no limit' });
  const backbone = h('select', { id: 'train-backbone' }, h('option', { value: '' }, 'preset'),
    ['resnet18', 'resnet34', 'resnet50', 'resnet101', 'efficientnet_lite0'].map((b) => h('option', { value: b }, b)));
  const weights = h('select', { id: 'train-weights' }, h('option', { value: '' }, 'preset'),
    h('option', { value: 'imagenet' }, 'imagenet'), h('option', { value: 'none' }, 'none (random)'));
  const sets = h('textarea', { id: 'train-sets', rows: 3, placeholder: 'more options, key=value per line, e.g.\nlr=0.001\naugment.rotation=15' });
  return h('div', { class: 'card' },
    h('h2', {}, 'New training run'),
    h('div', { class: 'form-row' }, h('label', { for: 'train-preset' }, 'Preset'), select),
    panel,
    h('div', { class: 'form-row' }, h('label', { for: 'train-epochs' }, 'Epochs'), epochs),
    h('div', { class: 'form-row' }, h('label', { for: 'train-minutes' }, 'Time limit (min)'), minutes),
    h('div', { class: 'form-row' }, h('label', { for: 'train-backbone' }, 'Backbone'), backbone),
    h('div', { class: 'form-row' }, h('label', { for: 'train-weights' }, 'Weights'), weights),
    sets,
    h('div', { class: 'actions' }, action('Start training', async () => {
      const job = await post(`${projectPath(app.pid)}/train`, {
        preset: select.value || null, epochs: epochs.value, max_minutes: minutes.value,
        backbone: backbone.value || null, weights: weights.value || null, sets: sets.value,
      });
      toast(`Queued: ${job.title}`);
      app.jobs.poll();
    }, { class: 'primary', id: 'train-start' })),
    h('p', { class: 'hint' }, 'Jobs run one at a time on this machine; training goes on if you close this tab.'));
}

function runsTable(app, runs, selected, onSelect) {
  if (!runs.length) return h('p', { class: 'empty' }, 'No training runs yet.');
  return h('table', { id: 'runs-table' },
    h('thead', {}, h('tr', {}, h('th', {}, 'run'), h('th', {}, 'state'), h('th', { class: 'num' }, 'epochs'),
      h('th', { class: 'num' }, 'test px'), h('th', { class: 'num' }, 'PCK@5'), h('th', {}, 'ETA'), h('th', {}, ''))),
    h('tbody', {}, runs.map((r) => h('tr', {
      class: `selectable${r.name === selected ? ' selected' : ''}`, dataset: { run: r.name, state: r.state }, onclick: () => onSelect(r.name),
    },
    h('td', {}, h('div', {}, r.name), h('div', { class: 'hint' }, r.backbone || '')),
    h('td', {}, h('span', { class: `tag ${r.state}` }, r.state)),
    h('td', { class: 'num' }, `${r.done} / ${r.epochs}`),
    h('td', { class: 'num' }, fmt(r.evaluated ? r.eval_test_px_error : r.test_px_error)),
    h('td', { class: 'num' }, r.evaluated ? pct(r.eval_test_pck5) : '–'),
    h('td', { class: 'num' }, r.state === 'training' ? duration(r.eta_seconds) : ''),
    h('td', {}, r.state === 'resumable' ? action('Resume', async () => {
      await post(`${projectPath(app.pid)}/runs/${enc(r.name)}/resume`, {});
      toast(`Resuming ${r.name}`);
      app.jobs.poll();
    }, { class: 'small', dataset: { resume: r.name } }) : null)))));
}

function splitTable(evaluation) {
  const splits = ['train', 'val', 'test'].filter((s) => evaluation[s]);
  return h('table', { class: 'eval-splits' },
    h('thead', {}, h('tr', {}, h('th', {}, 'split'), h('th', { class: 'num' }, 'mean px'), h('th', { class: 'num' }, 'RMSE'),
      h('th', { class: 'num' }, 'PCK@5'), h('th', { class: 'num' }, 'missing'))),
    h('tbody', {}, splits.map((s) => {
      const m = evaluation[s];
      return h('tr', {}, h('td', {}, s === 'val' ? 'validation' : s), h('td', { class: 'num' }, fmt(m.mean_px_error)),
        h('td', { class: 'num' }, fmt(m.rmse)), h('td', { class: 'num' }, pct(m.pck5)), h('td', { class: 'num' }, m.missing_predictions ?? '–'));
    })));
}

function bodypartTable(metrics) {
  return h('table', { id: 'bodypart-table' },
    h('thead', {}, h('tr', {}, h('th', {}, 'bodypart'), h('th', { class: 'num' }, 'mean px'), h('th', { class: 'num' }, 'RMSE'),
      h('th', { class: 'num' }, 'PCK@5'), h('th', { class: 'num' }, 'n'))),
    h('tbody', {}, Object.entries(metrics.per_bodypart || {}).map(([bp, v]) => h('tr', {},
      h('td', {}, bp), h('td', { class: 'num' }, fmt(v.mean_px_error)), h('td', { class: 'num' }, fmt(v.rmse)),
      h('td', { class: 'num' }, pct(v.pck5)), h('td', { class: 'num' }, v.n)))));
}

// Continue an interrupted or stopped run, to its planned epochs or to another number.
function resumeControl(app, run) {
  const epochs = h('input', { type: 'number', id: 'resume-epochs', min: run.done + 1, value: run.epochs });
  return h('div', { class: 'actions' },
    h('span', {}, `Stopped after epoch ${run.done}. Continue to`), epochs, h('span', {}, 'epochs'),
    action('Resume', async () => {
      await post(`${projectPath(app.pid)}/runs/${enc(run.name)}/resume`, { epochs: Number(epochs.value) });
      toast(`Resuming ${run.name}`);
      app.jobs.poll();
    }, { class: 'primary', id: 'resume-run' }));
}

function runPanel(app, run) {
  const base = `${projectPath(app.pid)}/runs/${enc(run.name)}`;
  const fileUrl = (rel) => `${base}/files/${rel.split('/').map(enc).join('/')}?v=${run.mtime || 0}`;
  const ev = run.evaluation;
  const last = run.metrics[run.metrics.length - 1] || {};
  return h('div', { id: 'run-panel', class: 'card', dataset: { run: run.name } },
    h('h2', {}, `Run ${run.name}`),
    h('p', {}, h('span', { class: `tag ${run.state}` }, run.state), ' ',
      `${run.done} of ${run.epochs} epochs`,
      run.seconds_per_epoch ? `, ${fmt(run.seconds_per_epoch, 1)} s per epoch` : '',
      run.state === 'training' ? h('b', { id: 'run-eta' }, `, about ${duration(run.eta_seconds)} left`) : '',
      last.loss !== undefined ? `; loss ${fmt(last.loss, 4)}` : ''),
    h('p', { class: 'hint' }, `${run.options.backbone}, weights ${run.options.weights}, batch ${run.options.batch_size}, lr ${run.options.lr}`),
    run.curve ? h('img', { id: 'learning-curve', class: 'curve', alt: 'learning curve', src: fileUrl('learning-curve.png') })
      : h('p', { class: 'empty' }, 'The learning curve appears after the first epoch.'),
    run.state === 'resumable' ? resumeControl(app, run) : null,
    h('div', { class: 'actions' },
      run.state !== 'training' && run.done > 0 ? action(ev ? 'Evaluate again' : 'Evaluate', async () => {
        await post(`${base}/evaluate`, {});
        toast('Evaluation queued');
        app.jobs.poll();
      }, { class: 'small' }) : null,
      run.done > 0 ? h('a', { href: `#/analyze/${app.pid}` }, 'Analyze videos with it →') : null),
    ev ? [
      h('h3', {}, `Evaluation (${ev.checkpoint} of epoch ${ev.epoch + 1}, ${ev.selection})`),
      splitTable(ev),
      h('h3', {}, 'Test split per bodypart'),
      ev.test ? bodypartTable(ev.test) : h('p', { class: 'empty' }, 'no test split'),
      Object.entries(run.images).map(([group, files]) => [
        h('h3', {}, group === 'summary' ? 'Calibration' : `${group} images (filled: label, ring: prediction)`),
        h('div', { class: 'images', dataset: { group } }, files.slice(0, 24).map((f) => h('img', {
          src: fileUrl(f), alt: f, loading: 'lazy', onclick: () => zoom(fileUrl(f)),
        })))]),
    ] : h('p', { class: 'empty' }, run.state === 'training' ? 'Evaluated when training ends.' : 'Not evaluated yet.'));
}

export default {
  async mount(root, app) {
    const [presets, runs] = await Promise.all([api('api/presets'), api(`${projectPath(app.pid)}/runs`)]);
    let selected = (runs[0] || {}).name || null;
    const runsEl = h('div', { id: 'runs' });
    const panelEl = h('div', { id: 'run-detail' });
    const jobsEl = h('ol', { id: 'train-jobs', class: 'jobs-inline' });
    let lastSignature = '';
    let follow = null; // the run a running job trains: shown as soon as it has a folder
    const followed = new Set();

    async function showRun() {
      if (!selected) {
        clear(panelEl);
        return;
      }
      try {
        clear(panelEl, runPanel(app, await api(`${projectPath(app.pid)}/runs/${enc(selected)}`)));
      } catch (err) {
        clear(panelEl, h('p', { class: 'error' }, err.message));
      }
    }
    async function refresh(force = false) {
      const list = await api(`${projectPath(app.pid)}/runs`);
      if (follow && list.some((r) => r.name === follow)) {
        force = force || follow !== selected;
        selected = follow;
        follow = null;
      }
      if (!selected && list.length) selected = list[0].name;
      const signature = JSON.stringify(list.map((r) => [r.name, r.state, r.done, r.evaluated, r.mtime]));
      clear(runsEl, runsTable(app, list, selected, (name) => {
        selected = name;
        refresh(true);
      }));
      if (force || signature !== lastSignature) await showRun();
      lastSignature = signature;
    }
    clear(root, h('div', { class: 'columns' },
      h('div', {}, trainForm(app, presets), jobsEl),
      h('div', {}, h('div', { class: 'card' }, h('h2', {}, 'Runs'), runsEl), panelEl)));
    clear(runsEl, runsTable(app, runs, selected, (name) => {
      selected = name;
      refresh(true);
    }));
    lastSignature = JSON.stringify(runs.map((r) => [r.name, r.state, r.done, r.evaluated, r.mtime]));
    await showRun();
    const update = (jobs) => {
      const mine = jobs.filter((j) => j.project_id === app.pid && (j.kind === 'train' || j.kind === 'evaluate'));
      const active = mine.filter((j) => j.status === 'running' || j.status === 'queued');
      clear(jobsEl, (active.length ? active : mine.slice(0, 1)).map((j) => jobRow(j)));
      const running = active.find((j) => j.status === 'running' && j.meta && j.meta.run);
      if (running && !followed.has(running.id)) {
        followed.add(running.id); // once per job: the person may pick another run meanwhile
        follow = running.meta.run;
      }
      refresh().catch((err) => toast(err.message, true));
    };
    update(app.jobs.list);
    return { update };
  },
};
