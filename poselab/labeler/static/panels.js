// The page's DOM panels: bodypart legend, folder, video and suggestion lists, frame strip,
// status bar, cursor badge, banner, toasts and the empty-folder guide. Pure rendering from
// values the app passes in; no state here.
//
// Adding a panel: give it an element in index.html, a build*/update* pair here, and call the
// update from App.render in labeler.js.

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function luminance(hex) {
  const n = parseInt(hex.slice(1), 16);
  return (0.299 * ((n >> 16) & 255) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255)) / 255;
}

// Frame state of one frame: 'complete' (every bodypart labeled or not visible), 'partial', 'empty'.
export function frameStatus(values, bodyparts) {
  if (!values) return 'empty';
  const n = bodyparts.filter((bp) => values[bp] !== undefined).length;
  return n === 0 ? 'empty' : n === bodyparts.length ? 'complete' : 'partial';
}

export function buildLegend(bodyparts, colors, onPick) {
  const list = $('legend');
  list.replaceChildren();
  bodyparts.forEach((bp, k) => {
    const li = el('li', 'bp');
    li.dataset.bodypart = bp;
    li.title = k < 9 ? `press ${k + 1} or click to make ${bp} active` : `click to make ${bp} active`;
    const key = el('span', 'key', k < 9 ? String(k + 1) : '');
    const dot = el('span', 'dot');
    dot.style.background = colors[k];
    const name = el('span', 'name', bp);
    const state = el('span', 'state');
    li.append(key, dot, name, state);
    li.addEventListener('click', () => onPick(k));
    list.append(li);
  });
}

// `predictions` {bp: [x, y, p]} of the frame (may be {}); `low` the Set of bodyparts whose
// prediction is under pcutoff: they get the 'low-likelihood' flag (a '?' after the name).
export function updateLegend(bodyparts, values, active, predictions = {}, low = new Set(),
  placeholders = []) {
  const warn = $('placeholders');
  warn.hidden = !placeholders.length;
  if (placeholders.length) {
    setText('placeholders', `config.yaml still lists placeholder bodyparts (${placeholders.join(', ')}) `
      + 'from a new project: replace them with your animal\'s bodyparts in config.yaml, '
      + 'then restart the labeler, before labeling.');
  }
  const items = $('legend').children;
  bodyparts.forEach((bp, k) => {
    const li = items[k];
    const v = values[bp];
    const state = Array.isArray(v) ? 'labeled' : v === 'nv' ? 'notvisible' : 'missing';
    const p = predictions[bp];
    li.classList.toggle('active', k === active);
    li.classList.toggle('predicted', !!p);
    li.classList.toggle('low-likelihood', low.has(bp));
    // Shown after the state by CSS ('.state::after'), e.g. "pred 0.30 ?" when flagged.
    const lik = p ? (p[2] === null ? 'pred' : `pred ${p[2].toFixed(2)}`) : '';
    li.querySelector('.state').dataset.pred = low.has(bp) ? `${lik} ?` : lik;
    li.classList.remove('labeled', 'notvisible', 'missing');
    li.classList.add(state);
    li.querySelector('.state').textContent = Array.isArray(v)
      ? `${v[0].toFixed(1)}, ${v[1].toFixed(1)}`
      : v === 'nv' ? 'not visible' : 'missing';
  });
}

export function updateFolders(folders, current, onPick) {
  const list = $('folders');
  list.replaceChildren();
  for (const f of folders) {
    const li = el('li', f.name === current ? 'folder current' : 'folder');
    li.dataset.folder = f.name;
    li.title = f.error || `${f.n_labeled} of ${f.n_images} frames have labels, ` +
      `${f.n_complete} complete`;
    const name = el('span', 'name', f.name);
    const count = el('span', 'count', `${f.n_labeled}/${f.n_images}`);
    const bar = el('span', 'bar');
    const fill = el('span', 'fill');
    fill.style.width = `${f.n_images ? (100 * f.n_complete) / f.n_images : 0}%`;
    bar.append(fill);
    if (f.error) li.classList.add('error');
    li.append(name, count, bar);
    li.addEventListener('click', () => onPick(f.name));
    list.append(li);
  }
}

export function buildVideos(videos, onPick) {
  const list = $('videos');
  list.replaceChildren();
  $('videos-panel').hidden = !videos.length;
  for (const v of videos) {
    const li = el('li', v.exists ? 'video' : 'video missing', v.name);
    li.dataset.video = v.id;
    li.title = v.exists ? `open ${v.name}: step through it and add frames to labeled-data/${v.stem}`
      : `${v.key}: video not found`;
    if (v.exists) li.addEventListener('click', () => onPick(v.id));
    list.append(li);
  }
}

export function updateVideos(current) {
  for (const li of $('videos').children) {
    li.classList.toggle('current', current !== null && Number(li.dataset.video) === current);
  }
}

// The folder's suggested frames, most useful first: name, score, why.
export function buildSuggestions(suggestions, onPick) {
  const list = $('suggestions');
  list.replaceChildren();
  setText('suggestions-count', suggestions.length ? `${suggestions.length}` : '');
  $('suggestions-panel').hidden = !suggestions.length;
  for (const s of suggestions) {
    const li = el('li', 'suggestion empty');
    li.dataset.image = s.image;
    li.title = `${s.source}: ${s.reason || 'suggested'}`;
    const name = el('span', 'name', s.image.replace(/\.png$/i, ''));
    const score = el('span', 'score', s.score === null ? '' : s.score.toFixed(2));
    const why = el('span', 'why', s.reason || s.source);
    li.append(name, score, why);
    li.addEventListener('click', () => onPick(s.image));
    list.append(li);
  }
}

export function updateSuggestions(statuses, current) {
  const items = $('suggestions').children;
  statuses.forEach((st, i) => {
    const cls = `suggestion ${st}${i === current ? ' current' : ''}`;
    if (items[i] && items[i].className !== cls) items[i].className = cls;
  });
}

// What to do when a folder has no frames yet (or the project no folders).
export function showEmpty({ folder, command, onExtract, onVideo, videos }) {
  const box = $('empty');
  const parts = [el('h3', '', folder ? `No frames in labeled-data/${folder} yet`
    : 'No labeled-data folders yet')];
  parts.push(el('p', '', 'Pick frames to label from the video with:'));
  parts.push(el('code', '', command));
  const buttons = el('div', 'buttons');
  if (onExtract) {
    const b = el('button', 'primary', 'Extract 20 frames now (k-means)');
    b.addEventListener('click', () => onExtract(20));
    buttons.append(b);
  }
  if (onVideo) {
    const b = el('button', '', 'Open the video and pick frames by hand');
    b.addEventListener('click', onVideo);
    buttons.append(b);
  } else if (!folder && videos) {
    parts.push(el('p', '', 'or open a video on the left and add frames by hand (E).'));
  }
  if (buttons.children.length) parts.push(buttons);
  box.replaceChildren(...parts);
  box.hidden = false;
}

export function hideEmpty() {
  $('empty').hidden = true;
}

export function buildStrip(images, onPick) {
  const strip = $('strip');
  strip.replaceChildren();
  images.forEach((name, i) => {
    const cell = el('span', 'cell empty');
    cell.title = `${i + 1}: ${name}`;
    cell.addEventListener('click', () => onPick(i));
    strip.append(cell);
  });
}

export function updateStrip(statuses, current) {
  const cells = $('strip').children;
  statuses.forEach((s, i) => {
    const cell = cells[i];
    if (!cell) return;
    const cls = `cell ${s}${i === current ? ' current' : ''}`;
    if (cell.className !== cls) cell.className = cls;
  });
}

export function setText(id, text) {
  const e = $(id);
  if (e.textContent !== text) e.textContent = text;
}

export function updateSaveState(state, text) {
  const e = $('save-state');
  e.className = state;
  e.textContent = text;
}

// The badge next to the cursor: which bodypart a click places, in its colour.
export function updateBadge(bodypart, index, color, stateText) {
  const badge = $('badge');
  badge.dataset.bodypart = bodypart || '';
  // The badge wears the bodypart's colour, with text that stays readable on it.
  const dark = color ? luminance(color) < 0.55 : true;
  badge.style.background = color || 'transparent';
  badge.style.color = dark ? '#ffffff' : '#111111';
  badge.style.borderColor = dark ? 'rgba(255,255,255,0.85)' : 'rgba(0,0,0,0.7)';
  setText('badge-name', bodypart ? `${index < 9 ? `${index + 1} ` : ''}${bodypart}` : '');
  setText('badge-state', stateText);
}

export function moveBadge(sx, sy, visible) {
  const badge = $('badge');
  badge.hidden = !visible;
  if (visible) badge.style.transform = `translate(${Math.round(sx + 16)}px, ${Math.round(sy + 14)}px)`;
}

export function showBanner(message, buttons = []) {
  const banner = $('banner');
  banner.replaceChildren(el('span', 'message', message));
  for (const [text, action] of buttons) {
    const b = el('button', '', text);
    b.addEventListener('click', action);
    banner.append(b);
  }
  banner.hidden = false;
}

export function hideBanner() {
  $('banner').hidden = true;
}

let toastTimer = null;
export function toast(message) {
  const t = $('toast');
  t.textContent = message;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    t.hidden = true;
  }, 2500);
}

export function showNotices(notices) {
  const box = $('notices');
  box.replaceChildren(...notices.map((n) => el('p', 'notice', n)));
}
