// Moving a whole animal, mixed into App: Ctrl+A selects every placed keypoint of the frame;
// dragging any of them moves them all, Shift+drag or the handle above the box rotates them
// about their centre, Ctrl+arrows nudge them all. Each gesture is ONE undo step. Esc, a
// click beside them or another frame ends the selection. Not-visible flags are untouched.

import { put } from './actions.js';
import * as ui from './panels.js';

export const GroupMoves = {
  labeledPoints() {
    const out = {};
    for (const bp of this.bodyparts) {
      const v = this.current[bp];
      if (Array.isArray(v)) out[bp] = [v[0], v[1]];
    }
    return out;
  },

  selectAll() {
    if (this.video) return;
    const n = Object.keys(this.labeledPoints()).length;
    if (!n) {
      ui.toast('no placed keypoints on this frame to select');
      return;
    }
    this.group = true;
    ui.toast(`${n} keypoints selected: drag one to move them all, Shift+drag or the handle to ` +
      'rotate, Esc to stop');
    this.render();
  },

  clearGroup() {
    if (!this.group) return;
    this.group = false;
    this.render();
  },

  handleHit(sx, sy) {
    const h = this.view.groupHandle;
    return !!(this.group && h && Math.hypot(h[0] - sx, h[1] - sy) <= 10);
  },

  beginGroupDrag(kind, press) {
    const before = this.labeledPoints();
    const pts = Object.values(before);
    const xs = pts.map((p) => p[0]);
    const ys = pts.map((p) => p[1]);
    const center = [(Math.min(...xs) + Math.max(...xs)) / 2, (Math.min(...ys) + Math.max(...ys)) / 2];
    this.drag = { bp: Object.keys(before)[0], group: { kind, before, center, press } };
    this.render();
  },

  // Where every point goes for a pointer at image (x, y).
  groupTarget([x, y]) {
    const { kind, before, center, press } = this.drag.group;
    const out = {};
    if (kind === 'move') {
      // One offset for all, limited so that none leaves the image (the shape never bends).
      const pts = Object.values(before);
      const v = this.view;
      let dx = x - press[0];
      let dy = y - press[1];
      dx = Math.min(v.iw - 0.5 - Math.max(...pts.map((p) => p[0])),
        Math.max(-0.5 - Math.min(...pts.map((p) => p[0])), dx));
      dy = Math.min(v.ih - 0.5 - Math.max(...pts.map((p) => p[1])),
        Math.max(-0.5 - Math.min(...pts.map((p) => p[1])), dy));
      for (const [bp, p] of Object.entries(before)) out[bp] = this.onImage([p[0] + dx, p[1] + dy]);
    } else {
      const a = Math.atan2(y - center[1], x - center[0]) -
        Math.atan2(press[1] - center[1], press[0] - center[0]);
      const [c, s] = [Math.cos(a), Math.sin(a)];
      for (const [bp, p] of Object.entries(before)) {
        const [u, w] = [p[0] - center[0], p[1] - center[1]];
        out[bp] = this.onImage([center[0] + c * u - s * w, center[1] + s * u + c * w]);
      }
    }
    return out;
  },

  groupDragTo(image) {
    for (const [bp, p] of Object.entries(this.groupTarget(image))) {
      put(this.folder.values, this.frameName, bp, p); // not saved until the drop
    }
    this.drawOverlay();
    this.renderLegend();
  },

  endGroupDrag(commit) {
    const g = this.drag.group;
    const after = this.labeledPoints();
    this.drag = null;
    for (const [bp, p] of Object.entries(g.before)) put(this.folder.values, this.frameName, bp, p);
    if (commit) this.change(Object.entries(after).map(([bp, value]) => ({ bp, value })));
    this.render();
  },

  moveGroupBy(dx, dy) {
    const before = this.labeledPoints();
    this.drag = { bp: null, group: { kind: 'move', before, center: [0, 0], press: [0, 0] } };
    const after = this.groupTarget([dx, dy]);
    this.drag = null;
    this.change(Object.entries(after).map(([bp, value]) => ({ bp, value })));
    this.render();
  },
};
