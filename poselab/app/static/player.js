// A frame player for the labeled video: frames come from the server as JPEG (decoded there
// by VideoReader), one request at a time in order, so the server reads the video forward
// without seeking. Play / pause (Space), step (, and .), a scrubber, speed.
//
// poselab writes labeled videos as MPEG-4 part 2, which browsers do not play; frames
// decoded on the server play whatever the codec.

import { api } from './api.js';
import { h } from './dom.js';

export async function player(base) {
  const info = await api(`${base}/player`);
  const canvas = h('canvas', { id: 'player-canvas', width: info.width, height: info.height });
  const ctx = canvas.getContext('2d');
  const scrub = h('input', { type: 'range', id: 'player-scrub', min: 0, max: Math.max(0, info.n_frames - 1), value: 0 });
  const counter = h('span', { id: 'player-frame', class: 'num' }, `0 / ${info.n_frames}`);
  const speed = h('select', { id: 'player-speed' }, [0.25, 0.5, 1, 2, 4].map((s) => h('option', { value: s, selected: s === 1 }, `${s}×`)));
  const play = h('button', { type: 'button', id: 'player-play' }, 'Play');
  const state = { index: 0, playing: false, shown: -1, loading: false, timer: null };
  const fps = info.fps > 0 ? info.fps : 30;

  async function show(index) {
    state.loading = true;
    try {
      const res = await fetch(`${base}/player/${index}?v=${info.version}`);
      if (!res.ok) throw new Error(`frame ${index}: HTTP ${res.status}`);
      const bitmap = await createImageBitmap(await res.blob());
      ctx.drawImage(bitmap, 0, 0);
      state.shown = index;
      counter.textContent = `${index} / ${info.n_frames}`;
      if (document.activeElement !== scrub) scrub.value = index;
    } finally {
      state.loading = false;
    }
  }

  function tick() {
    if (!state.playing) return;
    const started = performance.now();
    const next = state.shown + 1;
    if (next >= info.n_frames) {
      stop();
      return;
    }
    show(next).then(() => {
      const wait = 1000 / (fps * Number(speed.value)) - (performance.now() - started);
      state.timer = setTimeout(tick, Math.max(0, wait));
    }).catch(stop);
  }

  function start() {
    if (state.shown >= info.n_frames - 1) state.shown = -1;
    state.playing = true;
    play.textContent = 'Pause';
    tick();
  }

  function stop() {
    state.playing = false;
    clearTimeout(state.timer);
    play.textContent = 'Play';
  }

  play.onclick = () => (state.playing ? stop() : start());
  scrub.oninput = () => {
    stop();
    if (!state.loading) show(Number(scrub.value));
  };
  scrub.onchange = () => show(Number(scrub.value));
  const step = (d) => {
    stop();
    show(Math.max(0, Math.min(info.n_frames - 1, state.shown + d)));
  };
  const el = h('div', { class: 'player', tabindex: 0, dataset: { frames: info.n_frames } },
    canvas,
    h('div', { class: 'controls' }, play,
      h('button', { type: 'button', class: 'small', onclick: () => step(-1), title: 'previous frame (,)' }, '◀'),
      h('button', { type: 'button', class: 'small', onclick: () => step(1), title: 'next frame (.)' }, '▶'),
      scrub, counter, speed),
    h('div', { class: 'hint' }, info.labeled ? info.file : `${info.file} (no labeled video yet: the video itself)`));
  el.addEventListener('keydown', (e) => {
    if (e.key === ' ') {
      e.preventDefault();
      play.click();
    } else if (e.key === ',') step(-1);
    else if (e.key === '.') step(1);
  });
  await show(0);
  return { el, state, destroy: stop };
}
