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
export const MARKER_RADIUS = 6; // CSS px at any zoom

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

  setImage(bitmap) {
    const sizeChanged = bitmap.width !== this.iw || bitmap.height !== this.ih;
    this.image = bitmap;
    this.iw = bitmap.width;
    this.ih = bitmap.height;
    if (sizeChanged || !this.fitted) this.fit();
    else this.drawImage();
  }

  fit() {
    if (!this.iw || !this.width) return;
    const margin = 16;
    const z = Math.min((this.width - margin) / this.iw, (this.height - margin) / this.ih);
    this.zoom = clamp(z, MIN_ZOOM, MAX_ZOOM);
    this.ox = (this.width - this.iw * this.zoom) / 2;
    this.oy = (this.height - this.ih * this.zoom) / 2;
    this.fitted = true;
    this.changed();
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

  // Overlay: skeleton, predictions, markers. `m` is a plain description from the app:
  // {bodyparts, colors, values: {bp: [x, y] | 'nv'}, predictions: {bp: [x, y, p]} | null,
  //  skeleton, skeletonColor, pcutoff, active, selected, hover, showLabels, showPredictions}
  drawOverlay(m) {
    const ctx = this.overlay.getContext('2d');
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, this.width, this.height);
    if (!m) return;
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
      if (pos[bp] && bp !== m.active) drawMarker(ctx, pos[bp], m.colors[k], false);
    });
    // The active bodypart last, on top, with a halo and its name.
    const k = m.bodyparts.indexOf(m.active);
    if (pos[m.active]) {
      drawMarker(ctx, pos[m.active], m.colors[k], true);
      drawName(ctx, pos[m.active], m.active);
    }
    if (m.selected && m.selected !== m.active && pos[m.selected]) {
      drawRing(ctx, pos[m.selected], MARKER_RADIUS + 4, '#ffffff', [2, 2]);
    }
    if (m.hover && m.hover !== m.active && pos[m.hover]) drawName(ctx, pos[m.hover], m.hover);
  }

  drawPrediction(ctx, [x, y, p], color, pcutoff) {
    const [sx, sy] = this.toStage(x, y);
    const low = p !== null && p < pcutoff;
    drawRing(ctx, [sx, sy], MARKER_RADIUS + 1, 'rgba(0,0,0,0.6)', [], 3.5);
    drawRing(ctx, [sx, sy], MARKER_RADIUS + 1, low ? '#9a9a9a' : color, [3, 2], 2);
    if (p !== null) {
      label(ctx, `${low ? '? ' : ''}${p.toFixed(2)}`, sx + MARKER_RADIUS + 4, sy + 4,
        low ? '#bbbbbb' : '#ffffff', 11);
    }
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

function drawMarker(ctx, [sx, sy], color, active) {
  const r = active ? MARKER_RADIUS + 1 : MARKER_RADIUS;
  if (active) drawRing(ctx, [sx, sy], r + 4, '#ffffff', [], 2);
  ctx.beginPath();
  ctx.arc(sx, sy, r, 0, 2 * Math.PI);
  ctx.fillStyle = withAlpha(color, 0.4);
  ctx.fill();
  ctx.lineWidth = 2;
  ctx.strokeStyle = color;
  ctx.stroke();
  // An outline that contrasts with the marker's own colour (jet's navy and maroon would
  // vanish on a dark animal with a black outline).
  const outline = luminance(color) < 0.35 ? 'rgba(255,255,255,0.9)' : 'rgba(0,0,0,0.75)';
  drawRing(ctx, [sx, sy], r + 1.5, outline, [], 1);
  // The exact position: a small cross, readable at any zoom and on any background.
  ctx.lineWidth = 3;
  ctx.strokeStyle = 'rgba(0,0,0,0.8)';
  cross(ctx, sx, sy, 2.5);
  ctx.lineWidth = 1;
  ctx.strokeStyle = '#ffffff';
  cross(ctx, sx, sy, 2.5);
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

function drawName(ctx, [sx, sy], name) {
  label(ctx, name, sx + MARKER_RADIUS + 7, sy - MARKER_RADIUS - 4, '#ffffff', 12);
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
