// The labeling page: application state, loading, rendering, autosave and conflict handling,
// and the read-only `window.poselab` hook that tests and benchmarks use (keep it stable).
//
// Values of a frame: {bodypart: [x, y] | 'nv'}; a missing bodypart has no key. The editing
// and navigation actions live in actions.js (mixed into App); input.js maps keys and pointer
// gestures onto them. Adding an action: see actions.js.

import { Actions, put } from './actions.js';
import { api, folderPath, SaveQueue } from './api.js';
import { ImageCache } from './images.js';
import { bindInput } from './input.js';
import * as ui from './panels.js';
import { View } from './view.js';

const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);

class App {
  constructor() {
    this.project = null;
    this.folders = [];
    this.folder = null; // {name, images, values: {frame: {bp: value}}, version, predictions, ...}
    this.frame = 0;
    this.active = 0;
    this.selected = null; // the bodypart that modifier+arrow nudges (last placed or dragged)
    this.hover = null;
    this.mode = 'sequential';
    this.painted = false;
    this.frameToken = 0;
    this.paintedToken = -1;
    this.paintWaiters = [];
    this.undoStack = [];
    this.redoStack = [];
    this.showLabels = true;
    this.showPredictions = true;
    this.conflict = null;
    this.pointer = null;
    this.drag = null;
    this.serialChain = Promise.resolve();
    this.cache = new ImageCache();
    this.view = new View($('stage'), $('image-canvas'), $('overlay-canvas'));
    this.view.onChange = () => {
      this.drawOverlay();
      this.renderPointer();
    };
    this.queue = new SaveQueue({
      onSaved: (folder, res) => this.onSaved(folder, res),
      onConflict: (folder, message) => this.onConflict(folder, message),
      onFailed: () => this.renderSaveState(),
      onChange: () => this.renderSaveState(),
    });
  }

  get bodyparts() {
    return this.project ? this.project.bodyparts : [];
  }

  get frameName() {
    return this.folder ? this.folder.images[this.frame] ?? null : null;
  }

  valuesOf(frame) {
    return (this.folder && this.folder.values[frame]) || {};
  }

  get current() {
    return this.valuesOf(this.frameName);
  }

  // Predictions of the current frame, {bp: [x, y, likelihood | null]}, or {} (none / hidden
  // file): read-only, from the folder's newest machinelabels file.
  get currentPredictions() {
    const preds = this.folder && this.folder.predictions;
    return (preds && preds[this.frameName]) || {};
  }

  // Bodyparts whose prediction on this frame is under the config's pcutoff (flagged).
  lowLikelihood() {
    const preds = this.currentPredictions;
    return this.bodyparts.filter((bp) => preds[bp] && preds[bp][2] !== null &&
      preds[bp][2] < this.project.pcutoff);
  }

  // Actions that await (folder loads) run one after another, never interleaved.
  serial(fn) {
    this.serialChain = this.serialChain.then(fn).catch((err) => ui.toast(err.message));
    return this.serialChain;
  }

  // ------------------------------------------------------------------ loading
  async start() {
    this.project = await api('api/project');
    document.title = `${this.project.task} — poselab labeler`;
    ui.setText('title', `${this.project.task}`);
    ui.buildLegend(this.bodyparts, this.project.colors, (k) => this.setActive(k));
    this.folders = this.project.folders;
    bindInput(this);
    await this.openFolder(this.project.initial_folder);
    this.active = 0; // the page opens on the first bodypart, whatever the frame holds
    this.render();
    setInterval(() => this.poll(), POLL_MS);
    window.addEventListener('beforeunload', (e) => {
      if (!this.queue.idle) e.preventDefault(); // unsaved edits: let the browser ask
    });
  }

  async openFolder(name, frameName = null) {
    const data = await api(folderPath(name));
    this.install(data, frameName);
  }

  install(data, frameName = null) {
    const values = {};
    for (const [frame, entry] of Object.entries(data.values)) values[frame] = { ...entry };
    // Edits not yet on disk stay visible (they are still on their way to the server).
    for (const e of this.queue.editsFor(data.name)) put(values, e.frame, e.bodypart, e.value);
    const preds = data.predictions;
    this.folder = {
      name: data.name,
      images: data.images,
      values,
      version: data.version,
      error: data.error,
      labelFile: data.label_file,
      predictions: preds && preds.points ? preds.points : null,
    };
    const notices = [...data.notices];
    if (data.error) notices.unshift(data.error);
    if (preds) notices.push(preds.error || `showing predictions of ${preds.file} (hollow markers)`);
    ui.showNotices(notices);
    ui.buildStrip(data.images, (i) => this.goFrame(i));
    this.updateCounts();
    const i = frameName ? data.images.indexOf(frameName) : 0;
    this.showFrame(Math.max(0, i), { auto: false });
    if (data.disk_changed) this.onDiskChanged();
  }

  showFrame(i, { auto = true } = {}) {
    const f = this.folder;
    if (!f || f.images.length === 0) {
      this.painted = false;
      this.render();
      return;
    }
    const step = i - this.frame;
    this.frame = Math.min(f.images.length - 1, Math.max(0, i));
    this.hover = null;
    if (auto && this.mode !== 'quick') {
      const k = this.firstMissing();
      if (k >= 0) this.active = k;
    }
    const name = this.frameName;
    const token = ++this.frameToken;
    const ready = this.cache.peek(f.name, name);
    this.cache.pin(f.name, name);
    // Prefetch the neighbours, the direction of travel first; after the frame asked for, so
    // that its download and decode do not share the CPU with them.
    const dir = step < 0 ? -1 : 1;
    const order = [dir, 2 * dir, -dir, 3 * dir, -2 * dir];
    const neighbours = order.map((d) => f.images[this.frame + d]).filter(Boolean);
    const prefetch = () => token === this.frameToken && this.cache.prefetch(f.name, neighbours);
    if (ready) {
      this.paint(ready, token);
      prefetch();
    } else {
      this.painted = false;
      $('loading').hidden = false;
      this.cache.get(f.name, name).then(
        (bitmap) => {
          if (token === this.frameToken) this.paint(bitmap, token);
          prefetch();
        },
        (err) => token === this.frameToken && ui.toast(err.message),
      );
    }
    this.render();
  }

  paint(bitmap, token) {
    this.view.setImage(bitmap);
    this.painted = true;
    $('loading').hidden = true;
    this.render();
    // The draw is on the canvas; it reaches the screen with the next rendered frame.
    requestAnimationFrame(() => {
      this.paintedToken = token;
      if (token === this.frameToken) this.paintWaiters.splice(0).forEach((r) => r());
    });
  }

  framePainted() {
    if (this.paintedToken === this.frameToken) return Promise.resolve();
    return new Promise((resolve) => this.paintWaiters.push(resolve));
  }

  // ------------------------------------------------------------------ rendering
  render() {
    if (!this.project) return;
    const vals = this.current;
    this.renderLegend();
    const bp = this.bodyparts[this.active];
    const v = vals[bp];
    const hint = Array.isArray(v) ? 'labeled · click moves it' : v === 'nv' ? 'not visible' : '';
    ui.updateBadge(bp, this.active, this.project.colors[this.active], hint);
    if (this.folder) {
      ui.updateStrip(this.folder.images.map((n) => ui.frameStatus(this.folder.values[n],
        this.bodyparts)), this.frame);
    }
    ui.updateFolders(this.folders, this.folder && this.folder.name, (n) => this.switchFolder(n));
    this.drawOverlay();
    this.renderStatus();
    this.renderSaveState();
  }

  renderLegend() {
    ui.updateLegend(this.bodyparts, this.current, this.active, this.currentPredictions,
      new Set(this.lowLikelihood()));
  }

  drawOverlay() {
    if (!this.project || !this.painted) {
      this.view.drawOverlay(null);
      return;
    }
    const preds = this.folder.predictions;
    this.view.drawOverlay({
      bodyparts: this.bodyparts,
      colors: this.project.colors,
      values: this.current,
      predictions: preds ? preds[this.frameName] || null : null,
      skeleton: this.project.skeleton,
      skeletonColor: this.project.skeleton_color,
      pcutoff: this.project.pcutoff,
      active: this.bodyparts[this.active],
      selected: this.selected,
      hover: this.hover,
      showLabels: this.showLabels,
      showPredictions: this.showPredictions,
    });
  }

  renderStatus() {
    const f = this.folder;
    if (!f) return;
    const n = f.images.length;
    ui.setText('status-folder', f.name);
    ui.setText('status-frame', n ? `frame ${this.frame + 1}/${n}` : 'no images in this folder');
    ui.setText('status-name', this.frameName || '');
    ui.setText('status-size', this.view.iw ? `${this.view.iw}×${this.view.ih}` : '');
    this.renderPointer();
    ui.setText('status-mode', `mode: ${this.mode}`);
    const done = f.images.filter((m) => ui.frameStatus(f.values[m], this.bodyparts) === 'complete');
    ui.setText('status-progress', `${done.length}/${n} complete`);
    $('mode').value = this.mode;
  }

  // The cheap part of the status bar, on every pointer move: zoom and image position.
  renderPointer() {
    ui.setText('status-zoom', `zoom ${Math.round(this.view.zoom * 100)}%`);
    let xy = '';
    if (this.pointer) {
      const [x, y] = this.view.toImage(...this.pointer);
      xy = `x ${x.toFixed(1)}  y ${y.toFixed(1)}`;
    }
    ui.setText('status-xy', xy);
  }

  renderSaveState() {
    const q = this.queue;
    if (this.conflict) ui.updateSaveState('conflict', 'Not saved: file changed on disk');
    else if (q.error) ui.updateSaveState('error', `Not saved: ${q.error}${q.timer ? ' (retrying)' : ''}`);
    else if (!q.idle) ui.updateSaveState('saving', 'Saving…');
    else ui.updateSaveState('saved', 'All changes saved');
  }

  updateCounts() {
    const f = this.folder;
    const entry = this.folders.find((e) => e.name === f.name);
    if (!entry) return;
    let labeled = 0;
    let complete = 0;
    for (const name of f.images) {
      const v = f.values[name];
      if (v && Object.values(v).some(Array.isArray)) labeled += 1;
      if (ui.frameStatus(v, this.bodyparts) === 'complete') complete += 1;
    }
    Object.assign(entry, { n_images: f.images.length, n_labeled: labeled, n_complete: complete });
  }

  // ------------------------------------------------------------------ saving
  onSaved(folder, res) {
    const f = this.folder;
    if (f && f.name === folder && res.version === f.version + 1) f.version = res.version;
    // (a bigger jump means another tab saved too: poll() refreshes once the queue is idle)
    this.renderSaveState();
  }

  onConflict(folder, message) {
    this.conflict = folder;
    this.onDiskChanged(message, folder);
  }

  // Warn about an outside change of `folder`'s files; nothing is written until the user picks.
  onDiskChanged(message, folder = this.folder.name) {
    const unsaved = this.queue.editsFor(folder).length;
    const file = (this.folder && this.folder.name === folder && this.folder.labelFile) ||
      'the label file';
    const text = `${folder}: ${message || `${file} changed on disk (another program or ` +
      'server?). Nothing is overwritten until you reload.'}`;
    const buttons = unsaved
      ? [[`Reload and re-apply my ${unsaved} unsaved edit(s)`, () => this.reload(folder, true)],
        ['Reload and discard them', () => this.reload(folder, false)]]
      : [['Reload from disk', () => this.reload(folder, true)]];
    ui.showBanner(text, buttons);
    this.renderSaveState();
  }

  reload(name, keep) {
    return this.serial(async () => {
      const data = await api(`${folderPath(name)}/reload`, { method: 'POST', body: {} });
      if (!keep) this.queue.drop(name);
      if (this.conflict === name) this.conflict = null;
      ui.hideBanner();
      if (this.folder && this.folder.name === name) this.install(data, this.frameName);
      this.queue.unblock(name);
    });
  }

  async poll() {
    const f = this.folder;
    if (!f || this.polling) return;
    this.polling = true;
    try {
      const s = await api(`${folderPath(f.name)}/status`);
      if (f !== this.folder) return;
      if (s.disk_changed) {
        if ($('banner').hidden) this.onDiskChanged();
      } else if (s.version > f.version && this.queue.idle && !this.drag) {
        await this.serial(async () => this.install(await api(folderPath(f.name)), this.frameName));
      }
    } catch (err) {
      if (err.status === 0) ui.updateSaveState('error', err.message);
    } finally {
      this.polling = false;
    }
  }

  saveNow() {
    const f = this.folder;
    return this.serial(async () => {
      await this.queue.whenIdle();
      const res = await api(`${folderPath(f.name)}/save`, { method: 'POST', body: {} });
      if (res.version === f.version + 1) f.version = res.version;
      ui.toast(`saved ${f.name}`);
    });
  }

  hoverAt(sx, sy) {
    this.pointer = sx === null ? null : [sx, sy];
    const hover = sx === null || this.drag ? null : this.hitTest(sx, sy);
    ui.moveBadge(sx, sy, sx !== null && this.painted);
    const grab = hover || (sx !== null && !this.drag && this.predictionHit(sx, sy));
    $('overlay-canvas').classList.toggle('over-marker', !!grab);
    if (hover !== this.hover) {
      this.hover = hover;
      this.drawOverlay();
    }
    this.renderPointer();
  }

  state() {
    const points = {};
    const notVisible = [];
    const predictions = {};
    const preds = this.currentPredictions;
    for (const bp of this.bodyparts) {
      const v = this.current[bp];
      points[bp] = Array.isArray(v) ? [v[0], v[1]] : null;
      if (v === 'nv') notVisible.push(bp);
      predictions[bp] = preds[bp] ? [...preds[bp]] : null;
    }
    return {
      folder: this.folder ? this.folder.name : null,
      frame_index: this.frame,
      frame_name: this.frameName,
      n_frames: this.folder ? this.folder.images.length : 0,
      active_bodypart: this.bodyparts[this.active] ?? null,
      mode: this.mode,
      zoom: this.view.zoom,
      saved: this.queue.saved && !this.conflict,
      points,
      not_visible: notVisible,
      selected_bodypart: this.selected,
      painted: this.painted,
      conflict: !!this.conflict,
      undo_depth: this.undoStack.length,
      predictions,
      low_likelihood: this.project ? this.lowLikelihood() : [],
    };
  }
}

Object.assign(App.prototype, Actions);

const app = new App();
window.poselab = Object.freeze({
  state: () => app.state(),
  imageToClient: (x, y) => app.view.stageToClient(...app.view.toStage(x, y)),
  clientToImage: (cx, cy) => app.view.toImage(...app.view.clientToStage(cx, cy)),
  framePainted: () => app.framePainted(),
  whenSaved: () => app.queue.whenIdle(),
});
app.start().catch((err) => {
  ui.showBanner(`Cannot start the labeler: ${err.message}`);
  throw err;
});
