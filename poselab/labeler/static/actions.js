// Editing and navigation actions, mixed into App (labeler.js): every change of a label goes
// through change() (one undo step + the autosave queue).
//
// Adding an action: a method here that calls this.change([{bp, value}]) and this.render(),
// a key in input.js, and a row in index.html's help table.

import * as ui from './panels.js';
import { MARKER_RADIUS } from './view.js';

export const MODES = ['sequential', 'quick', 'loop'];
const UNDO_LIMIT = 1000;
const round2 = (v) => Math.round(v * 100) / 100; // 0.01 px: far below labeling precision
const same = (a, b) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

export function put(values, frame, bp, value) {
  if (value === null || value === undefined) {
    if (values[frame]) {
      delete values[frame][bp];
      if (!Object.keys(values[frame]).length) delete values[frame];
    }
    return;
  }
  if (!values[frame]) values[frame] = {};
  values[frame][bp] = value;
}

export const Actions = {
  // Set values on the current frame (or `frame`) as ONE undo step, and queue the autosave.
  change(changes, { frame = this.frameName, record = true } = {}) {
    const f = this.folder;
    if (!f || f.error || frame === null) {
      if (f && f.error) ui.toast('this folder is read-only: see the note on the right');
      return false;
    }
    const entry = { folder: f.name, frame, changes: [] };
    for (const { bp, value } of changes) {
      const before = f.values[frame] ? f.values[frame][bp] : undefined;
      if (same(before, value)) continue;
      entry.changes.push({ bp, before: before ?? null, after: value ?? null });
      this.setValue(f, frame, bp, value);
    }
    if (!entry.changes.length) return false;
    if (record) {
      this.undoStack.push(entry);
      if (this.undoStack.length > UNDO_LIMIT) this.undoStack.shift();
      this.redoStack = [];
    }
    this.updateCounts();
    return true;
  },

  setValue(folder, frame, bp, value) {
    put(folder.values, frame, bp, value);
    this.queue.push(folder.name, frame, bp, value ?? null);
  },

  firstMissing(from = -1) {
    const n = this.bodyparts.length;
    const vals = this.current;
    for (let s = 1; s <= n; s += 1) {
      const k = (from + s + n) % n;
      if (vals[this.bodyparts[k]] === undefined) return k;
    }
    return -1;
  },

  // After a placement in sequential/loop mode: the next unlabeled bodypart, or the next frame.
  advance() {
    if (this.mode === 'quick') return;
    const k = this.firstMissing(this.active);
    if (k >= 0) this.active = k;
    else if (this.mode === 'loop' && this.frame < this.folder.images.length - 1) {
      this.showFrame(this.frame + 1);
    }
  },

  place(x, y) {
    if (!this.painted || !this.view.contains(x, y)) return;
    const bp = this.bodyparts[this.active];
    this.change([{ bp, value: [round2(x), round2(y)] }]);
    this.selected = bp;
    this.advance();
    this.render();
  },

  deleteActive() {
    const bp = this.bodyparts[this.active];
    if (this.current[bp] === undefined) ui.toast(`${bp} is not labeled on this frame`);
    this.change([{ bp, value: null }]);
    this.render();
  },

  toggleNotVisible() {
    const bp = this.bodyparts[this.active];
    const nv = this.current[bp] !== 'nv';
    this.change([{ bp, value: nv ? 'nv' : null }]);
    if (nv) this.advance();
    this.render();
  },

  copyPrevious() {
    const f = this.folder;
    for (let j = this.frame - 1; j >= 0; j -= 1) {
      const prev = f.values[f.images[j]];
      if (!prev || !Object.values(prev).some(Array.isArray)) continue;
      const vals = this.current;
      const changes = this.bodyparts
        .filter((bp) => Array.isArray(prev[bp]) && vals[bp] === undefined)
        .map((bp) => ({ bp, value: [...prev[bp]] }));
      if (!this.change(changes)) ui.toast(`nothing to copy from ${f.images[j]}`);
      else ui.toast(`copied ${changes.length} point(s) from ${f.images[j]}`);
      const k = this.firstMissing(this.active - 1);
      if (k >= 0 && this.mode !== 'quick') this.active = k;
      this.render();
      return;
    }
    ui.toast('no earlier labeled frame in this folder');
  },

  // Enter: every prediction of this frame goes into its bodypart where that bodypart is empty
  // (a label or 'not visible' stays), as ONE undo step. The machinelabels file is never
  // written: accepted points are ordinary edits of CollectedData.
  acceptPredictions() {
    const preds = this.currentPredictions;
    if (!Object.keys(preds).length) {
      ui.toast('no predictions for this frame');
      return;
    }
    const vals = this.current;
    const changes = this.bodyparts
      .filter((bp) => preds[bp] && vals[bp] === undefined)
      .map((bp) => ({ bp, value: [round2(preds[bp][0]), round2(preds[bp][1])] }));
    const low = changes.filter((c) => this.lowLikelihood().includes(c.bp)).length;
    if (!this.change(changes)) ui.toast('every predicted bodypart is labeled or not visible');
    else ui.toast(`accepted ${changes.length} prediction(s)${low ? `, ${low} under pcutoff` : ''}`);
    const k = this.firstMissing(this.active - 1);
    if (k >= 0 && this.mode !== 'quick') this.active = k;
    this.render();
  },

  nudge(dx, dy) {
    const vals = this.current;
    const bp = Array.isArray(vals[this.selected]) ? this.selected : this.bodyparts[this.active];
    const v = vals[bp];
    if (!Array.isArray(v)) {
      ui.toast(`${bp} is not labeled on this frame`);
      return;
    }
    this.change([{ bp, value: [round2(v[0] + dx), round2(v[1] + dy)] }]);
    this.selected = bp;
    this.render();
  },

  undo() {
    return this.serial(async () => this.replay(this.undoStack, this.redoStack, 'before'));
  },

  redo() {
    return this.serial(async () => this.replay(this.redoStack, this.undoStack, 'after'));
  },

  async replay(from, to, side) {
    const e = from.pop();
    if (!e) {
      ui.toast(side === 'before' ? 'nothing to undo' : 'nothing to redo');
      return;
    }
    // Undo works across frames and folders: show where the change happens.
    if (!this.folder || this.folder.name !== e.folder) await this.openFolder(e.folder, e.frame);
    const i = this.folder.images.indexOf(e.frame);
    if (i >= 0 && i !== this.frame) this.showFrame(i, { auto: false });
    const f = this.folder;
    for (const c of e.changes) this.setValue(f, e.frame, c.bp, c[side]);
    this.active = this.bodyparts.indexOf(e.changes[0].bp);
    to.push(e);
    this.updateCounts();
    this.render();
  },

  // ------------------------------------------------------------------ dragging a marker
  hitTest(sx, sy) {
    if (!this.painted || !this.showLabels) return null;
    let best = null;
    let bestD = MARKER_RADIUS + 4;
    for (const bp of this.bodyparts) {
      const v = this.current[bp];
      if (!Array.isArray(v)) continue;
      const [px, py] = this.view.toStage(v[0], v[1]);
      const d = Math.hypot(px - sx, py - sy);
      if (d <= bestD) [best, bestD] = [bp, d];
    }
    return best;
  },

  // The hollow prediction marker under stage (sx, sy), when predictions are shown.
  predictionHit(sx, sy) {
    if (!this.painted || !this.showPredictions) return null;
    const preds = this.currentPredictions;
    let best = null;
    let bestD = MARKER_RADIUS + 4;
    for (const bp of this.bodyparts) {
      if (!preds[bp]) continue;
      const [px, py] = this.view.toStage(preds[bp][0], preds[bp][1]);
      const d = Math.hypot(px - sx, py - sy);
      if (d <= bestD) [best, bestD] = [bp, d];
    }
    return best;
  },

  // What a press at (sx, sy) grabs: {bp, from: [x, y]} or null. A label marker wins over a
  // prediction; grabbing a prediction drags from the prediction's position, so dropping it
  // stores that bodypart's label there (it replaces a label elsewhere: the drop is the answer).
  grabAt(sx, sy) {
    const label = this.hitTest(sx, sy);
    if (label) return { bp: label, from: this.current[label] };
    const bp = this.predictionHit(sx, sy);
    return bp ? { bp, from: this.currentPredictions[bp].slice(0, 2) } : null;
  },

  beginDrag({ bp, from }, pressImage) {
    // `before` may be undefined or 'nv' (a prediction drag); endDrag restores it, then records.
    const before = this.current[bp];
    this.drag = { bp, before, grab: [from[0] - pressImage[0], from[1] - pressImage[1]] };
    this.selected = bp;
  },

  dragTo([x, y]) {
    const d = this.drag;
    // Keep the grab offset so the marker does not jump to the pointer; stay on the image.
    const nx = Math.min(this.view.iw - 0.5, Math.max(-0.5, x + d.grab[0]));
    const ny = Math.min(this.view.ih - 0.5, Math.max(-0.5, y + d.grab[1]));
    put(this.folder.values, this.frameName, d.bp, [round2(nx), round2(ny)]); // not saved yet
    this.drawOverlay();
    this.renderLegend();
  },

  endDrag(commit = true) {
    const d = this.drag;
    this.drag = null;
    if (!d) return;
    const after = this.current[d.bp];
    put(this.folder.values, this.frameName, d.bp, d.before);
    if (commit) this.change([{ bp: d.bp, value: after }]);
    this.render();
  },

  // ------------------------------------------------------------------ navigation
  goFrame(i) {
    if (this.drag) this.endDrag();
    if (this.folder) this.showFrame(i);
  },

  nextMissing(dir = 1) {
    const f = this.folder;
    const n = f.images.length;
    for (let s = 1; s < n; s += 1) {
      const i = (this.frame + dir * s + n) % n;
      if (ui.frameStatus(f.values[f.images[i]], this.bodyparts) !== 'complete') {
        this.goFrame(i);
        return;
      }
    }
    ui.toast('every other frame of this folder is complete');
  },

  setActive(k) {
    const n = this.bodyparts.length;
    if (!n) return;
    this.active = ((k % n) + n) % n;
    this.selected = this.bodyparts[this.active];
    this.render();
  },

  setMode(mode) {
    this.mode = MODES.includes(mode) ? mode : 'sequential';
    this.render();
  },

  switchFolder(name) {
    if (this.folder && name === this.folder.name) return;
    this.serial(() => this.openFolder(name));
  },

  goto(text) {
    const f = this.folder;
    const t = text.trim();
    let i = -1;
    if (/^\d+$/.test(t)) i = Number(t) - 1;
    else i = f.images.findIndex((n) => n === t || n.startsWith(t));
    if (i >= 0 && i < f.images.length) this.goFrame(i);
    else ui.toast(`no frame "${t}" (type 1–${f.images.length} or an image name)`);
  },
};
