// The labeling page: application state, loading, rendering, autosave and conflict handling,
// and the read-only `window.poselab` hook that tests and benchmarks use (keep it stable).
//
// Values of a frame: {bodypart: [x, y] | 'nv'}; a missing bodypart has no key. The editing
// and navigation actions live in actions.js, moving a whole animal in group.js, labeling
// from a video in videomode.js, agreeing with the server (saves, outside changes) in sync.js
// (all mixed into App); input.js maps keys and pointer gestures onto them; place.js
// remembers where the person is. Adding an action: see actions.js.

import { Actions, put } from './actions.js';
import { api, folderPath, imagePath, SaveQueue } from './api.js';
import { GroupMoves } from './group.js';
import { ImageCache } from './images.js';
import { bindInput } from './input.js';
import * as ui from './panels.js';
import { Place } from './place.js';
import { Sync } from './sync.js';
import { Tracks, VideoMode } from './videomode.js';
import { View } from './view.js';

const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);

class App {
  constructor() {
    this.project = null;
    this.folders = [];
    this.folder = null; // {name, images, indices, values, version, predictions, suggestions, video}
    this.video = null; // video mode: {id, info, index} (see videomode.js)
    this.frame = 0;
    this.active = 0;
    this.chosen = false; // the person picked the active bodypart on this frame (keys, legend)
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
    this.showNames = false;
    this.showTrails = true;
    this.trailLength = 10;
    this.group = false; // every keypoint of the frame selected (group.js)
    this.conflict = null;
    this.pointer = null;
    this.drag = null;
    this.serialChain = Promise.resolve();
    this.cache = new ImageCache();
    this.tracks = new Tracks(() => this.drawOverlay());
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
    return this.folder && !this.video ? this.folder.images[this.frame] ?? null : null;
  }

  valuesOf(frame) {
    return (this.folder && this.folder.values[frame]) || {};
  }

  get current() {
    return this.valuesOf(this.frameName);
  }

  // The video frame number of an image (img0123.png -> 123), else its position in the folder.
  frameIndex(name) {
    const f = this.folder;
    return f && f.indices[name] !== undefined ? f.indices[name] : f ? f.images.indexOf(name) : -1;
  }

  // Predictions of the current frame, {bp: [x, y, likelihood | null]}, or {}: in a folder from
  // its newest machinelabels file, in a video from the analysis file. Read-only.
  get currentPredictions() {
    if (this.video) return this.videoPredictions(this.video.index);
    const preds = this.folder && this.folder.predictions;
    return (preds && preds[this.frameName]) || {};
  }

  // Bodyparts whose prediction on this frame is under the config's pcutoff (flagged).
  lowLikelihood() {
    const preds = this.currentPredictions;
    return this.bodyparts.filter((bp) => preds[bp] && preds[bp][2] !== null &&
      preds[bp][2] < this.project.pcutoff);
  }

  // Where the view looks on a new frame: its labels, else its predictions.
  focusPoints() {
    const labeled = Object.values(this.current).filter(Array.isArray);
    if (labeled.length) return labeled;
    return Object.values(this.currentPredictions).map((p) => [p[0], p[1]]);
  }

  // Actions that await (folder loads) run one after another, never interleaved.
  serial(fn) {
    this.serialChain = this.serialChain.then(fn).catch((err) => ui.toast(err.message));
    return this.serialChain;
  }

  // ------------------------------------------------------------------ loading
  async start() {
    this.project = await api('api/project');
    const p = this.project;
    document.title = `${p.task} — poselab labeler`;
    ui.setText('title', `${p.task}`);
    ui.buildLegend(this.bodyparts, p.colors, (k) => this.setActive(k, true));
    this.folders = p.folders;
    this.memory = new Place(p.root);
    this.restoreSettings();
    bindInput(this);
    ui.buildVideos(p.videos, (id) => this.serial(() => this.openVideo(id)));
    const { place, fromUrl } = this.memory.read();
    const names = this.folders.map((f) => f.name);
    let folder = p.initial_folder;
    if (names.includes(place.folder) && (fromUrl || !p.folder_option)) folder = place.folder;
    this.setMode(place.mode || this.mode);
    this.setDisplay(Number(place.brightness) || 1, Number(place.contrast) || 1);
    if (folder) await this.openFolder(folder, place.folder === folder ? place.frame : null);
    else this.render();
    const vid = Number(place.video);
    if (place.video !== undefined && p.videos.some((v) => v.id === vid)) {
      await this.openVideo(vid, Number(place.vframe) || 0);
    }
    this.active = this.firstMissing() >= 0 && this.mode !== 'quick' ? this.firstMissing() : 0;
    this.chosen = false;
    this.started = true;
    this.render();
    this.rememberPlace();
    setInterval(() => this.poll(), POLL_MS);
    window.addEventListener('beforeunload', (e) => {
      if (!this.queue.idle) e.preventDefault(); // unsaved edits: let the browser ask
    });
    // Confirmed or not asked: the page goes. Whatever is not acknowledged yet goes with it.
    window.addEventListener('pagehide', () => {
      this.rememberPlace(true);
      if (!this.queue.idle) this.queue.flush();
    });
  }

  restoreSettings() {
    const s = this.memory.settings();
    this.view.radius = Number(s.size) || this.project.dotsize || this.view.radius;
    this.showNames = !!s.names;
    this.showTrails = s.trails !== false;
    this.trailLength = Number(s.trailLength) || this.trailLength;
    $('marker-size').value = this.view.radius;
    $('show-names').checked = this.showNames;
    $('show-trails').checked = this.showTrails;
  }

  saveSettings() {
    this.memory.saveSettings({ size: this.view.radius, names: this.showNames,
      trails: this.showTrails, trailLength: this.trailLength });
  }

  // The URL fragment and local storage follow the person (place.js).
  rememberPlace(now = false) {
    if (!this.started) return; // until the saved place is applied, there is nothing new
    const place = {
      folder: this.folder ? this.folder.name : null,
      frame: this.frameName || (this.folder && this.video ? this.placeFrame : null),
      mode: this.mode,
      brightness: this.brightness !== 1 ? this.brightness : null,
      contrast: this.contrast !== 1 ? this.contrast : null,
      video: this.video ? this.video.id : null,
      vframe: this.video ? this.video.index : null,
    };
    if (now) this.memory.writeNow(place);
    else this.memory.write(place);
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
    const changed = !this.folder || this.folder.name !== data.name;
    this.folder = {
      name: data.name,
      images: data.images,
      indices: data.indices || {},
      values,
      version: data.version,
      error: data.error,
      labelFile: data.label_file,
      predictions: preds && preds.points ? preds.points : null,
      suggestions: data.suggestions || [],
      video: data.video,
    };
    if (changed) [this.group, this.chosen] = [false, false]; // choices were for that folder
    const notices = [...(this.project.notices || []), ...data.notices];
    if (data.error) notices.unshift(data.error);
    if (preds) notices.push(preds.error || `showing predictions of ${preds.file} (hollow markers)`);
    ui.showNotices(notices);
    ui.buildStrip(data.images, (i) => this.goFrame(i));
    ui.buildSuggestions(this.folder.suggestions, (image) => this.goImage(image));
    this.updateCounts();
    const i = frameName ? data.images.indexOf(frameName) : 0;
    if (!this.video) this.showFrame(Math.max(0, i), { auto: false });
    else this.placeFrame = frameName;
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
    const moved = Math.min(f.images.length - 1, Math.max(0, i)) !== this.frame;
    this.frame = Math.min(f.images.length - 1, Math.max(0, i));
    this.hover = null;
    if (moved || auto) {
      this.group = false;
      if (this.mode !== 'quick') this.chosen = false;
    }
    if (auto && this.mode !== 'quick') {
      const k = this.firstMissing();
      if (k >= 0) this.active = k;
    }
    const name = this.frameName;
    const key = `f:${f.name}/${name}`;
    const token = ++this.frameToken;
    const ready = this.cache.peek(key);
    this.cache.pin(key);
    // Prefetch the neighbours, the direction of travel first; after the frame asked for, so
    // that its download and decode do not share the CPU with them.
    const dir = step < 0 ? -1 : 1;
    const order = [dir, 2 * dir, -dir, 3 * dir, -2 * dir];
    const neighbours = order.map((d) => f.images[this.frame + d]).filter(Boolean)
      .map((n) => [`f:${f.name}/${n}`, imagePath(f.name, n)]);
    const prefetch = () => token === this.frameToken && this.cache.prefetch(neighbours);
    if (ready) {
      this.paint(ready, token);
      prefetch();
    } else {
      this.painted = false;
      $('loading').hidden = false;
      this.cache.get(key, imagePath(f.name, name)).then(
        (bitmap) => {
          if (token === this.frameToken) this.paint(bitmap, token);
          prefetch();
        },
        (err) => token === this.frameToken && ui.toast(err.message),
      );
    }
    this.render();
    this.rememberPlace();
  }

  paint(bitmap, token) {
    this.view.setImage(bitmap, this.focusPoints());
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
    this.renderLegend();
    const bp = this.bodyparts[this.active];
    const shown = this.drag ? this.drag.bp : bp; // a drag names what it moves
    const k = this.bodyparts.indexOf(shown);
    ui.updateBadge(shown, k, this.project.colors[k], this.badgeHint(shown));
    const f = this.folder;
    if (f) {
      ui.updateStrip(f.images.map((n) => ui.frameStatus(f.values[n], this.bodyparts)), this.frame);
      ui.updateSuggestions(f.suggestions.map((s) => ui.frameStatus(f.values[s.image],
        this.bodyparts)), f.suggestions.findIndex((s) => s.image === this.frameName));
    }
    ui.updateFolders(this.folders, f && f.name, (n) => this.switchFolder(n));
    ui.updateVideos(this.video && this.video.id);
    this.renderEmpty();
    this.drawOverlay();
    this.renderStatus();
    this.renderSaveState();
  }

  badgeHint(bp) {
    if (this.video) return 'video: E adds this frame';
    if (this.drag) return this.group ? 'moving all' : 'moving';
    if (!this.showLabels) return 'labels hidden (V)';
    const v = this.current[bp];
    if (this.frameComplete() && !this.chosen) return 'frame complete · drag to move';
    return Array.isArray(v) ? 'labeled · click moves it' : v === 'nv' ? 'not visible' : '';
  }

  renderEmpty() {
    const p = this.project;
    const f = this.folder;
    if (this.video || (f && f.images.length)) {
      ui.hideEmpty();
      return;
    }
    const stem = f ? f.name : null;
    const video = f && f.video !== null ? p.videos.find((v) => v.id === f.video) : null;
    ui.showEmpty({
      folder: stem,
      command: `poselab extract-frames ${p.config}${video ? ` -v ${video.name}` : ''}`,
      onExtract: f && video ? (n) => this.extractFrames(n) : null,
      onVideo: video ? () => this.serial(() => this.openVideo(video.id)) : null,
      videos: p.videos.length,
    });
  }

  renderLegend() {
    ui.updateLegend(this.bodyparts, this.current, this.active, this.currentPredictions,
      new Set(this.lowLikelihood()), this.project.placeholders || []);
  }

  drawOverlay() {
    if (!this.project || !this.painted) {
      this.view.drawOverlay(null);
      return;
    }
    const preds = this.currentPredictions;
    this.view.drawOverlay({
      bodyparts: this.bodyparts,
      colors: this.project.colors,
      values: this.current,
      predictions: Object.keys(preds).length ? preds : null,
      trails: this.trails(),
      skeleton: this.project.skeleton,
      skeletonColor: this.project.skeleton_color,
      pcutoff: this.project.pcutoff,
      active: this.drag ? this.drag.bp : this.bodyparts[this.active],
      selected: this.selected,
      hover: this.hover,
      showLabels: this.showLabels,
      showPredictions: this.showPredictions,
      showNames: this.showNames,
      group: this.group,
    });
  }

  renderStatus() {
    const f = this.folder;
    if (this.video) {
      this.renderVideoStatus();
    } else if (f) {
      const n = f.images.length;
      ui.setText('status-folder', f.name);
      ui.setText('status-frame', n ? `frame ${this.frame + 1}/${n}` : 'no images in this folder');
      ui.setText('status-name', this.frameName || '');
      const done = f.images.filter((m) => ui.frameStatus(f.values[m], this.bodyparts) === 'complete');
      ui.setText('status-progress', `${done.length}/${n} complete`);
    }
    ui.setText('status-size', this.view.iw ? `${this.view.iw}×${this.view.ih}` : '');
    this.renderPointer();
    ui.setText('status-mode', this.video ? 'video' : `mode: ${this.mode}`);
    $('mode').value = this.mode;
    document.body.classList.toggle('video-mode', !!this.video);
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

  hoverAt(sx, sy) {
    this.pointer = sx === null ? null : [sx, sy];
    const hover = sx === null || this.drag ? null : this.hitTest(sx, sy);
    ui.moveBadge(sx, sy, sx !== null && this.painted);
    const grab = hover || (sx !== null && !this.drag && (this.predictionHit(sx, sy) ||
      this.handleHit(sx, sy)));
    $('overlay-canvas').classList.toggle('over-marker', !!grab);
    if (hover !== this.hover) {
      this.hover = hover;
      this.drawOverlay();
    }
    this.renderPointer();
  }

  setDisplay(brightness, contrast) {
    this.brightness = brightness;
    this.contrast = contrast;
    $('brightness').value = brightness;
    $('contrast').value = contrast;
    this.view.setFilter(brightness, contrast);
    this.rememberPlace();
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
    const f = this.folder;
    return {
      folder: f ? f.name : null,
      frame_index: this.frame,
      frame_name: this.frameName,
      n_frames: f ? f.images.length : 0,
      active_bodypart: this.bodyparts[this.active] ?? null,
      chosen: this.chosen,
      mode: this.mode,
      zoom: this.view.zoom,
      saved: this.queue.saved && !this.conflict,
      points,
      not_visible: notVisible,
      selected_bodypart: this.selected,
      group: this.group,
      painted: this.painted,
      conflict: !!this.conflict,
      undo_depth: this.undoStack.length,
      predictions,
      low_likelihood: this.project ? this.lowLikelihood() : [],
      suggestions: f ? f.suggestions.map((s) => s.image) : [],
      video: this.video ? { id: this.video.id, index: this.video.index,
        n_frames: this.video.info.n_frames, extracted: this.video.info.extracted[this.video.index] ?? null } : null,
      brightness: this.brightness,
      contrast: this.contrast,
      marker_size: this.view.radius,
      show_names: this.showNames,
      show_trails: this.showTrails,
      trail_points: this.trailPointCount(),
    };
  }
}

Object.assign(App.prototype, Actions, GroupMoves, Sync, VideoMode);

const app = new App();
window.poselab = Object.freeze({
  state: () => app.state(),
  imageToClient: (x, y) => app.view.stageToClient(...app.view.toStage(x, y)),
  clientToImage: (cx, cy) => app.view.toImage(...app.view.clientToStage(cx, cy)),
  framePainted: () => app.framePainted(),
  whenSaved: () => app.queue.whenIdle(),
  // Benchmarks: show video frame `index` (as the scrubber does) and resolve once painted.
  seekVideo: (index) => {
    app.seekVideo(index);
    return app.framePainted();
  },
});
app.start().catch((err) => {
  ui.showBanner(`Cannot start the labeler: ${err.message}`);
  throw err;
});
