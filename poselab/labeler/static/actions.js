// Editing and navigation actions, mixed into App (labeler.js): every change of a label goes
// through change() (one undo step + the autosave queue).
//
// Safety rule for clicks: a click places the active bodypart, unless the frame is complete
// (every bodypart placed or not visible) and the person did not pick the active bodypart on
// this frame: then a stray click moves nothing (moving is a drag of the marker, or a click
// after choosing the bodypart with 1-9, W/S or the legend). With labels hidden (V) clicks
// never edit.
//
// Adding an action: a method here that calls this.change([{bp, value}]) and this.render(),
// a key in input.js, and a row in index.html's help table.

import * as ui from './panels.js';

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

  // A point kept on the image of the frame shown (the server refuses points off the image).
  onImage([x, y]) {
    const v = this.view;
    if (!v.iw) return [round2(x), round2(y)];
    return [round2(Math.min(v.iw - 0.5, Math.max(-0.5, x))),
      round2(Math.min(v.ih - 0.5, Math.max(-0.5, y)))];
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

  frameComplete() {
    const vals = this.current;
    return this.bodyparts.length > 0 && this.bodyparts.every((bp) => vals[bp] !== undefined);
  },

  // After a placement in sequential/loop mode: the next unlabeled bodypart, or the next frame.
  advance() {
    if (this.mode === 'quick') return;
    const k = this.firstMissing(this.active);
    this.chosen = false; // the page picked what comes next, not the person
    if (k >= 0) this.active = k;
    else if (this.mode === 'loop' && this.frame < this.folder.images.length - 1) {
      this.showFrame(this.frame + 1);
    }
  },

  place(x, y) {
    if (this.video) {
      ui.toast('this is the video: press E to add this frame to labeled-data and label it');
      return;
    }
    if (!this.painted) {
      ui.toast('the frame is still loading: click again');
      return;
    }
    if (!this.view.contains(x, y)) return;
    if (this.group) {
      this.clearGroup(); // a click beside the selection ends it; it never places
      return;
    }
    if (!this.showLabels) {
      ui.toast('labels are hidden (V): clicks do not edit');
      return;
    }
    if (this.frameComplete() && !this.chosen) {
      ui.toast('every bodypart is placed: drag a marker to move it, or pick a bodypart ' +
        '(1–9, W/S) and click');
      return;
    }
    const bp = this.bodyparts[this.active];
    this.change([{ bp, value: this.onImage([x, y]) }]);
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

  // C: the empty bodyparts take the points of the labeled frame nearest in VIDEO time
  // (img<index>.png's index): with k-means frames, the previous file is another pose.
  copyNearest() {
    const f = this.folder;
    const here = this.frameIndex(this.frameName);
    const vals = this.current;
    const empty = this.bodyparts.filter((bp) => vals[bp] === undefined);
    let best = null;
    for (const name of f.images) {
      if (name === this.frameName) continue;
      const v = f.values[name];
      if (!v || !empty.some((bp) => Array.isArray(v[bp]))) continue;
      const d = Math.abs(this.frameIndex(name) - here);
      // ties: the earlier frame (the one the animal came from)
      if (!best || d < best.d || (d === best.d && this.frameIndex(name) < here)) best = { name, d };
    }
    if (!best) {
      ui.toast(empty.length ? 'no other labeled frame has these bodyparts' : 'no empty bodypart');
      return;
    }
    const src = f.values[best.name];
    const changes = empty.filter((bp) => Array.isArray(src[bp]))
      .map((bp) => ({ bp, value: this.onImage(src[bp]) }));
    this.change(changes);
    ui.toast(`copied ${changes.length} point(s) from ${best.name}`);
    const k = this.firstMissing(this.active - 1);
    if (k >= 0 && this.mode !== 'quick') [this.active, this.chosen] = [k, false];
    this.render();
  },

  // Enter: predictions at or above pcutoff go into their bodyparts where those are empty (a
  // label or 'not visible' stays), as ONE undo step; Shift+Enter (`all`) takes the flagged
  // ones too. The machinelabels file is never written: accepted points are ordinary edits.
  acceptPredictions(all = false) {
    if (this.video) return;
    const preds = this.currentPredictions;
    if (!Object.keys(preds).length) {
      ui.toast('no predictions for this frame');
      return;
    }
    const vals = this.current;
    const low = new Set(this.lowLikelihood());
    const empty = this.bodyparts.filter((bp) => preds[bp] && vals[bp] === undefined);
    const take = empty.filter((bp) => all || !low.has(bp));
    const left = empty.length - take.length;
    const changes = take.map((bp) => ({ bp, value: this.onImage(preds[bp]) }));
    const rest = left ? `; ${left} under pcutoff left (Shift+Enter accepts them too)` : '';
    if (!this.change(changes)) {
      ui.toast(left ? `every prediction left is under pcutoff (Shift+Enter accepts them)`
        : 'every predicted bodypart is labeled or not visible');
    } else ui.toast(`accepted ${changes.length} prediction(s)${rest}`);
    const k = this.firstMissing(this.active - 1);
    if (k >= 0 && this.mode !== 'quick') [this.active, this.chosen] = [k, false];
    this.render();
  },

  nudge(dx, dy) {
    if (this.group) {
      this.moveGroupBy(dx, dy);
      return;
    }
    const vals = this.current;
    const bp = Array.isArray(vals[this.selected]) ? this.selected : this.bodyparts[this.active];
    const v = vals[bp];
    if (!Array.isArray(v)) {
      ui.toast(`${bp} is not labeled on this frame`);
      return;
    }
    this.change([{ bp, value: this.onImage([v[0] + dx, v[1] + dy]) }]);
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
    if (this.video) this.leaveVideo(false);
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
    let bestD = this.view.radius + 4;
    for (const bp of this.bodyparts) {
      const v = this.current[bp];
      if (!Array.isArray(v)) continue;
      const [px, py] = this.view.toStage(v[0], v[1]);
      const d = Math.hypot(px - sx, py - sy);
      if (d <= bestD) [best, bestD] = [bp, d];
    }
    return best;
  },

  // The hollow prediction marker under stage (sx, sy), when predictions are shown and can be
  // taken (not in a video, not with labels hidden).
  predictionHit(sx, sy) {
    if (!this.painted || !this.showPredictions || !this.showLabels || this.video) return null;
    const preds = this.currentPredictions;
    let best = null;
    let bestD = this.view.radius + 4;
    for (const bp of this.bodyparts) {
      if (!preds[bp]) continue;
      const [px, py] = this.view.toStage(preds[bp][0], preds[bp][1]);
      const d = Math.hypot(px - sx, py - sy);
      if (d <= bestD) [best, bestD] = [bp, d];
    }
    return best;
  },

  // What a press at (sx, sy) grabs: {bp, from: [x, y]}, a whole-animal move or rotation
  // ({group: 'move' | 'rotate'}), or null. A label marker wins over a prediction; grabbing a
  // prediction drags from the prediction's position, so dropping it stores that bodypart's
  // label there (it replaces a label elsewhere: the drop is the answer).
  grabAt(sx, sy, shift = false) {
    if (this.group) {
      if (this.handleHit(sx, sy)) return { group: 'rotate' };
      return this.hitTest(sx, sy) ? { group: shift ? 'rotate' : 'move' } : null;
    }
    const label = this.hitTest(sx, sy);
    if (label) return { bp: label, from: this.current[label] };
    const bp = this.predictionHit(sx, sy);
    return bp ? { bp, from: this.currentPredictions[bp].slice(0, 2) } : null;
  },

  beginDrag(hit, pressImage) {
    if (hit.group) {
      this.beginGroupDrag(hit.group, pressImage);
      return;
    }
    const { bp, from } = hit;
    // `before` may be undefined or 'nv' (a prediction drag); endDrag restores it, then records.
    const before = this.current[bp];
    this.drag = { bp, before, grab: [from[0] - pressImage[0], from[1] - pressImage[1]] };
    this.selected = bp;
    this.render(); // the badge now names the dragged bodypart
  },

  dragTo([x, y]) {
    const d = this.drag;
    if (d.group) {
      this.groupDragTo([x, y]);
      return;
    }
    // Keep the grab offset so the marker does not jump to the pointer; stay on the image.
    put(this.folder.values, this.frameName, d.bp, this.onImage([x + d.grab[0], y + d.grab[1]]));
    this.drawOverlay();
    this.renderLegend();
  },

  endDrag(commit = true) {
    const d = this.drag;
    if (d && d.group) {
      this.endGroupDrag(commit);
      return;
    }
    this.drag = null;
    if (!d) return;
    const after = this.current[d.bp];
    put(this.folder.values, this.frameName, d.bp, d.before);
    if (commit) this.change([{ bp: d.bp, value: after }]);
    this.render();
  },

  // Z: zoom and pan onto the animal (the frame's labels, else its predictions).
  fitAnimal() {
    const points = this.focusPoints();
    if (!points.length) {
      ui.toast('no keypoints on this frame to zoom to');
      return;
    }
    this.view.fitPoints(points);
  },

  // ------------------------------------------------------------------ navigation
  goFrame(i) {
    if (this.drag) this.endDrag();
    if (this.video) this.stepVideo(i - this.video.index);
    else if (this.folder) this.showFrame(i);
  },

  goImage(name) {
    const i = this.folder ? this.folder.images.indexOf(name) : -1;
    if (i >= 0) {
      if (this.video) this.leaveVideo(false);
      this.goFrame(i);
    }
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

  // N / Shift+N: the next (previous) suggested frame that is not complete yet, in the
  // suggestions' order (most useful first); then the next folder that has suggestions.
  nextSuggestion(dir = 1) {
    const f = this.folder;
    const open = (s) => ui.frameStatus(f.values[s.image], this.bodyparts) !== 'complete';
    const list = f ? f.suggestions : [];
    const at = list.findIndex((s) => s.image === this.frameName);
    const start = at >= 0 ? at : dir > 0 ? -1 : list.length;
    for (let j = start + dir; j >= 0 && j < list.length; j += dir) {
      if (open(list[j])) {
        this.goImage(list[j].image);
        return;
      }
    }
    const k = this.folders.findIndex((e) => e.name === (f && f.name));
    const others = [...this.folders.slice(k + 1), ...this.folders.slice(0, Math.max(k, 0))]
      .filter((e) => e.n_suggestions > 0 && e.name !== (f && f.name));
    if (!others.length) {
      ui.toast(list.length ? 'no more suggestions to label' : 'no suggested frames: ' +
        'run `poselab extract-outliers` to get some');
      return;
    }
    this.serial(async () => {
      await this.openFolder(others[0].name);
      const g = this.folder;
      const next = g.suggestions.find((s) => ui.frameStatus(g.values[s.image],
        this.bodyparts) !== 'complete');
      if (next) this.goImage(next.image);
      ui.toast(`suggestions of ${g.name}`);
    });
  },

  // `chosen`: the person picked it (keys, legend), so a click may move a placed point.
  setActive(k, chosen = true) {
    const n = this.bodyparts.length;
    if (!n) return;
    this.active = ((k % n) + n) % n;
    this.chosen = chosen;
    this.selected = this.bodyparts[this.active];
    this.render();
  },

  setMode(mode) {
    this.mode = MODES.includes(mode) ? mode : 'sequential';
    this.render();
    this.rememberPlace();
  },

  switchFolder(name) {
    if (this.video) this.leaveVideo(false);
    if (this.folder && name === this.folder.name) return;
    this.serial(() => this.openFolder(name));
  },

  goto(text) {
    const t = text.trim();
    if (this.video) {
      const i = Number(t);
      if (/^\d+$/.test(t) && i < this.video.info.n_frames) this.seekVideo(i);
      else ui.toast(`no frame "${t}" (type 0–${this.video.info.n_frames - 1})`);
      return;
    }
    const f = this.folder;
    let i = -1;
    if (/^\d+$/.test(t)) i = Number(t) - 1;
    else i = f.images.findIndex((n) => n === t || n.startsWith(t));
    if (i >= 0 && i < f.images.length) this.goFrame(i);
    else ui.toast(`no frame "${t}" (type 1–${f.images.length} or an image name)`);
  },
};
