// Where the person is and how the page looks, kept across reloads and server restarts.
//
// The place (folder, frame, mode, brightness, contrast; in a video: video and frame number)
// lives in the URL's fragment, so a copied URL opens the same frame for someone else, and in
// local storage, so reopening the plain URL picks up where the person left off. Display
// settings (marker size, names, trails) live in local storage only. The fragment never
// reaches the server (the token stays in the query string).
//
// Adding a remembered value: a key in PLACE_KEYS (URL + storage) or in the settings object
// the app passes to saveSettings (storage only).

const PLACE_KEYS = ['folder', 'frame', 'mode', 'brightness', 'contrast', 'video', 'vframe'];

function storageGet(key) {
  try {
    return JSON.parse(localStorage.getItem(key) || 'null');
  } catch {
    return null; // storage disabled or a malformed entry: start fresh
  }
}

function storageSet(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // storage full or disabled: the URL still holds the place
  }
}

export class Place {
  // `scope` separates projects that share an origin (one port after another).
  constructor(scope) {
    this.key = `poselab:${scope}`;
    this.timer = null;
    this.last = '';
  }

  // {folder, frame, ...} from the URL fragment when it has one, else from local storage.
  // `fromUrl` tells which: a shared link beats the --folder option, storage does not.
  read() {
    const hash = new URLSearchParams(location.hash.replace(/^#/, ''));
    const fromUrl = PLACE_KEYS.some((k) => hash.has(k));
    const place = {};
    if (fromUrl) {
      for (const k of PLACE_KEYS) if (hash.has(k)) place[k] = hash.get(k);
    } else {
      Object.assign(place, storageGet(`${this.key}:place`) || {});
    }
    return { place, fromUrl };
  }

  // Record the place (debounced: called on every step, it must cost nothing then).
  write(place) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.writeNow(place), 150);
  }

  writeNow(place) {
    clearTimeout(this.timer);
    const params = new URLSearchParams();
    for (const k of PLACE_KEYS) {
      if (place[k] !== undefined && place[k] !== null && place[k] !== '') params.set(k, place[k]);
    }
    const text = params.toString();
    if (text === this.last) return;
    this.last = text;
    history.replaceState(null, '', `${location.pathname}${location.search}#${text}`);
    storageSet(`${this.key}:place`, Object.fromEntries(params));
  }

  settings() {
    return storageGet(`${this.key}:settings`) || {};
  }

  saveSettings(settings) {
    storageSet(`${this.key}:settings`, settings);
  }
}
