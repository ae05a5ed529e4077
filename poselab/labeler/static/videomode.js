// Labeling straight from a video, mixed into App: open a video of the project, scrub or step
// through it, and add the frame shown to labeled-data (the server writes it exactly as
// `poselab extract-frames` does), then label it. Also the prediction tracks behind trails.
//
// Frames come as JPEGs decoded by the server's VideoReader. Only one frame request is in
// flight at a time: while it runs, a scrub only updates the frame wanted next, so dragging
// the scrubber never queues hundreds of decodes and the last position always wins.

import { api, videoFramePath } from './api.js';
import * as ui from './panels.js';

const CHUNK = 256; // frames of predictions per track request
const $ = (id) => document.getElementById(id);

// Analysis predictions per video, fetched in chunks when first needed.
export class Tracks {
  constructor(onLoad) {
    this.chunks = new Map();
    this.onLoad = onLoad;
  }

  // Frame i of video `id`: [[x, y, p] | null per bodypart], null (no prediction), or
  // undefined while its chunk is on its way.
  at(id, i) {
    if (i < 0) return null;
    const k = Math.floor(i / CHUNK);
    const key = `${id}:${k}`;
    let c = this.chunks.get(key);
    if (!c) {
      c = { points: null, start: k * CHUNK };
      this.chunks.set(key, c);
      api(`api/videos/${id}/track?start=${k * CHUNK}&stop=${(k + 1) * CHUNK}`).then(
        (r) => {
          c.points = r.points;
          c.start = r.start;
          this.onLoad();
        },
        () => {
          c.points = [];
        },
      );
    }
    if (!c.points) return undefined;
    return c.points[i - c.start] ?? null;
  }
}

export const VideoMode = {
  async openVideo(id, index = null) {
    if (this.drag) this.endDrag(false);
    ui.toast('opening the video…');
    const info = await api(`api/videos/${id}`);
    if (!info.n_frames) throw new Error(`${info.name}: no decodable frame`);
    const f = this.folder;
    // From a folder of this video, start at the frame shown.
    const here = f && f.video === id && this.frameName ? this.frameIndex(this.frameName) : 0;
    this.placeFrame = this.frameName || this.placeFrame;
    this.video = { id, info, index: -1, want: null, busy: false };
    this.painted = false; // until the first video frame is up
    this.group = false;
    this.hover = null;
    const scrub = $('scrubber');
    scrub.max = info.n_frames - 1;
    ui.setText('scrub-max', `${info.n_frames - 1}`);
    this.showVideoFrame(index ?? Math.max(0, here));
    ui.toast(`${info.name}: ${info.n_frames} frames. ←/→ step, E adds the frame, Esc leaves`);
  },

  // Back to the folder (at `image` when given, else where the person was).
  leaveVideo(show = true, image = null) {
    if (!this.video) return;
    this.video = null;
    this.painted = false;
    if (show && this.folder) {
      const i = this.folder.images.indexOf(image || this.placeFrame);
      this.frame = -1; // force a fresh paint of the folder image
      this.showFrame(Math.max(0, i), { auto: !image });
    } else this.render();
    this.rememberPlace();
  },

  seekVideo(i) {
    if (this.video) this.showVideoFrame(i);
  },

  stepVideo(d) {
    this.showVideoFrame(this.video.index + d);
  },

  showVideoFrame(i) {
    const v = this.video;
    const n = v.info.n_frames;
    const target = Math.min(n - 1, Math.max(0, Math.round(i)));
    v.dir = target < v.index ? -1 : 1;
    v.index = target;
    this.hover = null;
    const key = `v:${v.id}/${target}`;
    const token = ++this.frameToken;
    const ready = this.cache.peek(key);
    this.cache.pin(key);
    if (ready) {
      this.paint(ready, token);
      this.prefetchVideo(v);
    } else {
      $('loading').hidden = false; // the previous frame stays up until this one arrives
      v.want = { i: target, token };
      this.pumpVideo(v);
    }
    $('scrubber').value = target;
    this.render();
    this.rememberPlace();
  },

  pumpVideo(v) {
    if (v.busy || !v.want) return;
    const { i, token } = v.want;
    v.want = null;
    v.busy = true;
    this.cache.get(`v:${v.id}/${i}`, videoFramePath(v.id, i))
      .then((bitmap) => {
        if (this.video === v && token === this.frameToken) this.paint(bitmap, token);
      }, (err) => {
        if (token === this.frameToken) ui.toast(err.message);
      })
      .finally(() => {
        v.busy = false;
        if (this.video !== v) return;
        if (v.want) this.pumpVideo(v);
        else this.prefetchVideo(v);
      });
  },

  // The next frames in the direction of travel (sequential decodes on the server: cheap),
  // enough ahead that holding D never waits for a round trip.
  prefetchVideo(v) {
    const items = [];
    for (let k = 1; k <= 3; k += 1) {
      const j = v.index + k * (v.dir || 1);
      if (j >= 0 && j < v.info.n_frames) items.push([`v:${v.id}/${j}`, videoFramePath(v.id, j)]);
    }
    this.cache.prefetch(items, 2);
  },

  // E: write the frame shown into labeled-data/<video>/ and open it for labeling.
  addVideoFrame() {
    const v = this.video;
    if (!v) return;
    const index = v.index;
    this.serial(async () => {
      const res = await api(`${videoFramePath(v.id, index)}/add`, { method: 'POST', body: {} });
      v.info.extracted[index] = res.image;
      const project = await api('api/project');
      this.folders = project.folders;
      await this.openFolder(res.folder, res.image);
      this.leaveVideo(true, res.image);
      ui.toast(res.created ? `added ${res.image} to labeled-data/${res.folder}: label it`
        : `${res.image} was already in labeled-data/${res.folder}`);
    });
  },

  videoPredictions(index) {
    const v = this.video;
    const row = v && v.info.track ? this.tracks.at(v.id, index) : null;
    const out = {};
    if (row) this.bodyparts.forEach((bp, k) => row[k] && (out[bp] = row[k]));
    return out;
  },

  // {bp: [[x, y] | null, ...]} over the last `trailLength` frames up to the one shown, from
  // the video's analysis predictions; null when there is nothing to draw.
  trails() {
    if (!this.showTrails || !this.painted) return null;
    let id;
    let here;
    if (this.video) {
      if (!this.video.info.track) return null;
      [id, here] = [this.video.id, this.video.index];
    } else {
      const f = this.folder;
      const name = this.frameName;
      // Correcting predictions: the folder's frames are frames of its video.
      if (!f || f.video === null || !f.predictions || f.indices[name] === undefined) return null;
      [id, here] = [f.video, f.indices[name]];
    }
    const out = {};
    this.bodyparts.forEach((bp) => (out[bp] = []));
    let any = false;
    for (let j = here - this.trailLength; j <= here; j += 1) {
      const row = this.tracks.at(id, j);
      this.bodyparts.forEach((bp, k) => {
        const p = row && row[k];
        out[bp].push(p ? [p[0], p[1]] : null);
        any = any || !!p;
      });
    }
    return any ? out : null;
  },

  trailPointCount() {
    const t = this.trails();
    return t ? Object.values(t).reduce((n, pts) => n + pts.filter(Boolean).length, 0) : 0;
  },

  renderVideoStatus() {
    const v = this.video;
    const name = v.info.extracted[v.index];
    ui.setText('status-folder', v.info.name);
    ui.setText('status-frame', `frame ${v.index} of 0–${v.info.n_frames - 1}`);
    ui.setText('status-name', name ? `in labeled-data as ${name}` : 'not in labeled-data');
    ui.setText('status-progress', `${Object.keys(v.info.extracted).length} extracted`);
    ui.setText('scrub-index', `${v.index}`);
    $('add-frame').textContent = name ? `Label ${name} (E)` : 'Add this frame to labeled-data (E)';
  },
};
