// The image view: zoom/pan transform and drawing on two stacked canvases (the image below,
// markers/skeleton/predictions above, so moving a marker never redraws the image).
//
// Coordinate systems
//   client: CSS px of the browser window (MouseEvent/PointerEvent clientX/Y; pointer events
//           carry fractional values, which the 0.05 px precision needs at low zoom).
//   stage:  CSS px from the canvases' top-left corner (client minus the canvas rect).
//   image:  DeepLabCut's convention, pixel CENTRES at integer coordinates: pixel (i, j) covers
//           [i - 0.5, i + 0.5) x [j - 0.5, j + 0.5).
// The image is drawn with drawImage(img, ox, oy, w * zoom, h * zoom): pixel i's left edge lands
// at stage x = ox + i * zoom, so its centre, image x = i, is at ox + (i + 0.5) * zoom. Hence
//   stage = o + (image + 0.5) * zoom        image = (stage - o) / zoom - 0.5
// Everything else (hit tests, markers, the test hook) goes through toStage / toImage.

export const MIN_ZOOM = 0.25;
export const MAX_ZOOM = 32;
export const MARKER_RADIUS = 6; // CSS px at any zoom (config dotsize and the size slider change it)

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

export class View {
  constructor(stage, imageCanvas, overlayCanvas) {
    this.stage = stage;
    this.imageCanvas = imageCanvas;
    this.overlay = overlayCanvas;
    this.zoom = 1;
    this.ox = 0;
    this.oy = 0;
    this.image = null;
    this.iw = 0;
    this.ih = 0;
    this.width = 0;
    this.height = 0;
    this.fitted = false;
    this.radius = MARKER_RADIUS;
    this.onChange = () => {};
    new ResizeObserver(() => this.resize()).observe(stage);
    this.resize();
  }

  toStage(x, y) {
    return [this.ox + (x + 0.5) * this.zoom, this.oy + (y + 0.5) * this.zoom];
  }

  toImage(sx, sy) {
    return [(sx - this.ox) / this.zoom - 0.5, (sy - this.oy) / this.zoom - 0.5];
  }

  clientToStage(cx, cy) {
    const r = this.overlay.getBoundingClientRect();
    return [cx - r.left, cy - r.top];
  }

  stageToClient(sx, sy) {
    const r = this.overlay.getBoundingClientRect();
    return [sx + r.left, sy + r.top];
  }

  // Whether an image coordinate lies on the image (its outer pixel edges included).
  contains(x, y) {
    return x >= -0.5 && y >= -0.5 && x <= this.iw - 0.5 && y <= this.ih - 0.5;
  }

  resize() {
    const dpr = window.devicePixelRatio || 1;
    const w = this.stage.clientWidth;
    const h = this.stage.clientHeight;
    if (w === this.width && h === this.height && dpr === this.dpr) return;
    // Keep the image point at the stage centre where it was.
    const [cx, cy] = this.width ? this.toImage(this.width / 2, this.height / 2) : [0, 0];
    Object.assign(this, { width: w, height: h, dpr });
    for (const c of [this.imageCanvas, this.overlay]) {
      c.width = Math.max(1, Math.round(w * dpr));
      c.height = Math.max(1, Math.round(h * dpr));
      c.style.width = `${w}px`;
      c.style.height = `${h}px`;
    }
    if (!this.fitted) this.fit();
    else this.centerOn(cx, cy);
  }

  // A new frame. Zoom and pan stay; when zoomed in and the frame's keypoints `focus`
  // ([[x, y], ...]) are off screen, the view re-centres on them (the animal moved).
  setImage(bitmap, focus = null) {
    const sizeChanged = bitmap.width !== this.iw || bitmap.height !== this.ih;
    this.image = bitmap;
    this.iw = bitmap.width;
    this.ih = bitmap.height;
    if (sizeChanged || !this.fitted) this.fit();
    else if (focus && focus.length && this.zoomedIn() && !this.shows(focus, 2 * this.radius)) {
      const xs = focus.map((q) => q[0]);
      const ys = focus.map((q) => q[1]);
      this.centerOn((Math.min(...xs) + Math.max(...xs)) / 2, (Math.min(...ys) + Math.max(...ys)) / 2);
    } else this.drawImage();
  }

  fitZoom() {
    const margin = 16;
    return clamp(Math.min((this.width - margin) / this.iw, (this.height - margin) / this.ih),
      MIN_ZOOM, MAX_ZOOM);
  }

  // Whether the person zoomed in beyond the whole-image view.
  zoomedIn() {
    return !!this.iw && this.zoom > this.fitZoom() * 1.01;
  }

  // Whether every image point of `points` [[x, y], ...] is on screen, `margin` px inside.
  shows(points, margin = 0) {
    return points.every(([x, y]) => {
      const [sx, sy] = this.toStage(x, y);
      return sx >= margin && sy >= margin && sx <= this.width - margin && sy <= this.height - margin;
    });
  }

  // Zoom and pan so that the box around `points` fills the view (with room around it).
  fitPoints(points) {
    const xs = points.map((p) => p[0]);
    const ys = points.map((p) => p[1]);
    const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    // An animal's keypoints span only its body: leave half its size around it, and never
    // zoom so far that a single point fills the screen.
    const pad = Math.max(12, 0.5 * Math.max(x1 - x0, y1 - y0));
    const w = x1 - x0 + 2 * pad;
    const h = y1 - y0 + 2 * pad;
    this.zoom = clamp(Math.min(this.width / w, this.height / h), MIN_ZOOM, 16);
    this.centerOn((x0 + x1) / 2, (y0 + y1) / 2);
  }

  fit() {
    if (!this.iw || !this.width) return;
    this.zoom = this.fitZoom();
    this.ox = (this.width - this.iw * this.zoom) / 2;
    this.oy = (this.height - this.ih * this.zoom) / 2;
    this.fitted = true;
    this.changed();
  }

  setRadius(r) {
    this.radius = clamp(r, 2, 40);
    this.onChange();
  }

  centerOn(x, y) {
    this.ox = this.width / 2 - (x + 0.5) * this.zoom;
    this.oy = this.height / 2 - (y + 0.5) * this.zoom;
    this.changed();
  }

  // Zoom by `factor` keeping the image point under stage (sx, sy) fixed.
  zoomAt(factor, sx = this.width / 2, sy = this.height / 2) {
    this.setZoom(this.zoom * factor, sx, sy);
  }

  setZoom(zoom, sx = this.width / 2, sy = this.height / 2) {
    const [x, y] = this.toImage(sx, sy);
    this.zoom = clamp(zoom, MIN_ZOOM, MAX_ZOOM);
    this.ox = sx - (x + 0.5) * this.zoom;
    this.oy = sy - (y + 0.5) * this.zoom;
    this.changed();
  }

  panTo(ox, oy) {
    this.ox = ox;
    this.oy = oy;
    this.changed();
  }

  changed() {
    this.drawImage();
    this.onChange();
  }

  setFilter(brightness, contrast) {
    // A CSS filter on the image canvas: display only, composited, markers unaffected.
    const plain = brightness === 1 && contrast === 1;
    this.imageCanvas.style.filter = plain ? '' : `brightness(${brightness}) contrast(${contrast})`;
  }

  drawImage() {
    const ctx = this.imageCanvas.getContext('2d');
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, this.width, this.height);
    if (!this.image) return;
    // Magnified pixels stay crisp squares (their edges are what the user aims at); a
    // shrunken image is smoothed to limit aliasing.
    ctx.imageSmoothingEnabled = this.zoom < 1;
    ctx.drawImage(this.image, this.ox, this.oy, this.iw * this.zoom, this.ih * this.zoom);
  }

    // Overlay: trails, skeleton, predictions, markers, names, the whole-animal selection.
  // `m` is a plain description from the app:
  // {bodyparts, colors, values: {bp: [x, y] | 'nv'}, predictions: {bp: [x, y, p]} | null,
  //  trails: {bp: [[x, y] | null, ...] oldest first} | null, skeleton, skeletonColor, pcutoff,
  //  active, selected, hover, showLabels, showPredictions, showNames, group: bool}
  drawOverlay(m) {
    const ctx = this.overlay.getContext('2d');
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, this.width, this.height);
    this.groupHandle = null;
    if (!m) return;
    const r = this.radius;
    if (m.trails) {
      m.bodyparts.forEach((bp, k) => m.trails[bp] && this.drawTrail(ctx, m.trails[bp], m.colors[k]));
    }
    const pos = {};
    for (const bp of m.bodyparts) {
      const v = m.values[bp];
      if (Array.isArray(v)) pos[bp] = this.toStage(v[0], v[1]);
    }
    if (m.showLabels) drawSkeleton(ctx, m.skeleton, pos, m.skeletonColor);
    if (m.showPredictions && m.predictions) {
      m.bodyparts.forEach((bp, k) => {
        const p = m.predictions[bp];
        if (p) this.drawPrediction(ctx, p, m.colors[k], m.pcutoff);
      });
    }
    if (!m.showLabels) return;
    m.bodyparts.forEach((bp, k) => {
      if (pos[bp] && bp !== m.active) drawMarker(ctx, pos[bp], m.colors[k], false, r);
    });
    // The active bodypart last, on top, with a halo and its name.
    const k = m.bodyparts.indexOf(m.active);
    if (pos[m.active]) drawMarker(ctx, pos[m.active], m.colors[k], true, r);
    if (m.selected && m.selected !== m.active && pos[m.selected]) {
      drawRing(ctx, pos[m.selected], r + 4, '#ffffff', [2, 2]);
    }
    for (const bp of m.bodyparts) {
      if (!pos[bp]) continue;
      if (m.showNames || bp === m.active || bp === m.hover) drawName(ctx, pos[bp], bp, r);
    }
    if (m.group) this.drawGroup(ctx, Object.values(pos), r);
  }

  drawPrediction(ctx, [x, y, p], color, pcutoff) {
    const [sx, sy] = this.toStage(x, y);
    const r = this.radius;
    const low = p !== null && p < pcutoff;
    drawRing(ctx, [sx, sy], r + 1, 'rgba(0,0,0,0.6)', [], 3.5);
    drawRing(ctx, [sx, sy], r + 1, low ? '#9a9a9a' : color, [3, 2], 2);
    if (p !== null) {
      label(ctx, `${low ? '? ' : ''}${p.toFixed(2)}`, sx + r + 4, sy + 4,
        low ? '#bbbbbb' : '#ffffff', 11);
    }
  }

  // A faint line through the last frames' positions, fading into the past.
  drawTrail(ctx, points, color) {
    const n = points.length;
    ctx.save();
    ctx.lineCap = 'round';
    ctx.lineWidth = 2;
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    let prev = null;
    points.forEach((p, j) => {
      if (!p) {
        prev = null;
        return;
      }
      const s = this.toStage(p[0], p[1]);
      ctx.globalAlpha = 0.12 + 0.5 * ((j + 1) / n);
      if (prev) {
        ctx.beginPath();
        ctx.moveTo(prev[0], prev[1]);
        ctx.lineTo(s[0], s[1]);
        ctx.stroke();
      }
      ctx.beginPath();
      ctx.arc(s[0], s[1], 1.8, 0, 2 * Math.PI);
      ctx.fill();
      prev = s;
    });
    ctx.restore();
  }

  // All keypoints selected: a dashed box and a handle above it that rotates them.
  drawGroup(ctx, points, r) {
    if (!points.length) return;
    const xs = points.map((p) => p[0]);
    const ys = points.map((p) => p[1]);
    const pad = r + 6;
    const [x0, x1] = [Math.min(...xs) - pad, Math.max(...xs) + pad];
    const [y0, y1] = [Math.min(...ys) - pad, Math.max(...ys) + pad];
    const handle = [(x0 + x1) / 2, y0 - 24];
    ctx.save();
    for (const [color, width, dash] of [['rgba(0,0,0,0.8)', 3, []], ['#ffffff', 1.5, [5, 4]]]) {
      ctx.setLineDash(dash);
      ctx.lineWidth = width;
      ctx.strokeStyle = color;
      ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
      ctx.beginPath();
      ctx.moveTo(handle[0], y0);
      ctx.lineTo(handle[0], handle[1]);
      ctx.stroke();
    }
    ctx.restore();
    drawRing(ctx, handle, 6, 'rgba(0,0,0,0.8)', [], 4);
    drawRing(ctx, handle, 6, '#ffffff', [], 2);
    this.groupHandle = handle;
  }
}

function drawSkeleton(ctx, skeleton, pos, color) {
  // A contrasting halo under the config colour: DeepLabCut's default black skeleton would
  // vanish on a dark arena.
  const halo = luminance(color) > 0.5 ? 'rgba(0,0,0,0.55)' : 'rgba(255,255,255,0.55)';
  ctx.lineCap = 'round';
  for (const [width, stroke] of [[4, halo], [2, color]]) {
    ctx.lineWidth = width;
    ctx.strokeStyle = stroke;
    ctx.beginPath();
    for (const [a, b] of skeleton) {
      if (!pos[a] || !pos[b]) continue;
      ctx.moveTo(pos[a][0], pos[a][1]);
      ctx.lineTo(pos[b][0], pos[b][1]);
    }
    ctx.stroke();
  }
}

// A ring in the bodypart's colour between two contrasting outlines, over a see-through fill:
// overlapping markers stay visible through each other, and a navy or maroon marker (jet's
// ends) still stands out on a black animal.
function drawMarker(ctx, [sx, sy], color, active, radius) {
  const r = active ? radius + 1 : radius;
  if (active) {
    drawRing(ctx, [sx, sy], r + 5, 'rgba(0,0,0,0.7)', [], 3.5);
    drawRing(ctx, [sx, sy], r + 5, '#ffffff', [], 2);
  }
  ctx.beginPath();
  ctx.arc(sx, sy, r, 0, 2 * Math.PI);
  ctx.fillStyle = withAlpha(color, 0.3);
  ctx.fill();
  const dark = luminance(color) < 0.45;
  drawRing(ctx, [sx, sy], r, dark ? '#ffffff' : 'rgba(0,0,0,0.85)', [], 4.5);
  drawRing(ctx, [sx, sy], r, color, [], 2.5);
  // The exact position: a small cross, readable at any zoom and on any background.
  const h = Math.min(2.5, r * 0.6);
  ctx.lineWidth = 3;
  ctx.strokeStyle = 'rgba(0,0,0,0.8)';
  cross(ctx, sx, sy, h);
  ctx.lineWidth = 1;
  ctx.strokeStyle = '#ffffff';
  cross(ctx, sx, sy, h);
}

function cross(ctx, sx, sy, h) {
  ctx.beginPath();
  ctx.moveTo(sx - h, sy);
  ctx.lineTo(sx + h, sy);
  ctx.moveTo(sx, sy - h);
  ctx.lineTo(sx, sy + h);
  ctx.stroke();
}

function drawRing(ctx, [sx, sy], r, color, dash = [], width = 1.5) {
  ctx.save();
  ctx.setLineDash(dash);
  ctx.lineWidth = width;
  ctx.strokeStyle = color;
  ctx.beginPath();
  ctx.arc(sx, sy, r, 0, 2 * Math.PI);
  ctx.stroke();
  ctx.restore();
}

function drawName(ctx, [sx, sy], name, r) {
  label(ctx, name, sx + r + 6, sy - r - 3, '#ffffff', 12);
}

function label(ctx, text, x, y, color, size) {
  ctx.font = `600 ${size}px system-ui, sans-serif`;
  ctx.lineWidth = 3;
  ctx.strokeStyle = 'rgba(0,0,0,0.85)';
  ctx.strokeText(text, x, y);
  ctx.fillStyle = color;
  ctx.fillText(text, x, y);
}

function luminance(hex) {
  const n = parseInt(hex.slice(1), 16);
  return (0.299 * ((n >> 16) & 255) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255)) / 255;
}

export function withAlpha(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${a})`;
}
