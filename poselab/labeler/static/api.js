// Talking to the labeler server: JSON requests that carry the session token, image fetches,
// and the autosave queue.
//
// Adding a request: call api(path, {method, body}); errors arrive as ApiError with the
// server's one-line message.

const TOKEN = new URLSearchParams(location.search).get('token');

export class ApiError extends Error {
  constructor(status, message, kind) {
    super(message);
    this.status = status;
    this.kind = kind;
  }
}

function headers(extra = {}) {
  return TOKEN ? { ...extra, 'X-Poselab-Token': TOKEN } : extra;
}

export const folderPath = (folder) => `api/folders/${encodeURIComponent(folder)}`;

export async function api(path, { method = 'GET', body } = {}) {
  let res;
  try {
    res = await fetch(path, {
      method,
      cache: 'no-store',
      headers: headers(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'the labeler server does not answer (stopped, or the SSH tunnel closed?)');
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    // a non-JSON body: only the status is informative
  }
  if (!res.ok) {
    throw new ApiError(res.status, (data && data.error) || `HTTP ${res.status}`, data && data.kind);
  }
  return data;
}

export const imagePath = (folder, name) => `${folderPath(folder)}/images/${encodeURIComponent(name)}`;
export const videoFramePath = (id, index) => `api/videos/${id}/frames/${index}`;

// Fetch and decode an image off the main thread (createImageBitmap), ready for drawImage.
export async function fetchImage(url, what = url) {
  let res;
  try {
    res = await fetch(url, { headers: headers() });
  } catch {
    throw new ApiError(0, `${what}: the server does not answer`);
  }
  if (!res.ok) {
    let message = `HTTP ${res.status}`;
    try {
      message = (await res.json()).error || message;
    } catch {
      // not JSON
    }
    throw new ApiError(res.status, `${what}: ${message}`);
  }
  return createImageBitmap(await res.blob());
}

// The autosave queue. Every edit is sent at once; edits made while a request is in flight are
// merged (the last value per frame + bodypart wins) and sent together when it returns, so a
// burst of clicks costs a few writes rather than one per click, and nothing waits on a timer.
// A failed batch goes back under any newer edits; a 409 (files changed on disk) blocks that
// folder until the user decides; network and server errors retry with a growing delay.
//
// Every request carries this page's id and a request number. When the page closes, flush()
// re-sends everything not yet acknowledged (in flight or pending) in keepalive requests that
// outlive the page; the server skips a request numbered below one it already applied from
// this page, so the in-flight request, if it lands after the flush, cannot undo newer edits.
export class SaveQueue {
  constructor({ onSaved, onConflict, onFailed, onChange }) {
    this.client = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
    this.seq = 0;
    this.pending = new Map(); // folder -> Map(key -> {frame, bodypart, value})
    this.inflight = null; // {folder, edits}
    this.blocked = new Set();
    this.error = null;
    this.retryDelay = 0;
    this.timer = null;
    this.waiters = [];
    Object.assign(this, { onSaved, onConflict, onFailed, onChange });
  }

  get idle() {
    return !this.inflight && [...this.pending.values()].every((m) => m.size === 0);
  }

  get saved() {
    return this.idle && !this.error;
  }

  push(folder, frame, bodypart, value) {
    if (!this.pending.has(folder)) this.pending.set(folder, new Map());
    this.pending.get(folder).set(`${frame}\u0000${bodypart}`, { frame, bodypart, value });
    this.kick();
  }

  // Unsaved edits of a folder (sent or not), the newest value per frame + bodypart.
  editsFor(folder) {
    const out = new Map();
    if (this.inflight && this.inflight.folder === folder) {
      for (const [k, e] of this.inflight.edits) out.set(k, e);
    }
    for (const [k, e] of this.pending.get(folder) || []) out.set(k, e);
    return [...out.values()];
  }

  drop(folder) {
    this.pending.set(folder, new Map());
    this.kick();
  }

  unblock(folder) {
    this.blocked.delete(folder);
    this.kick();
  }

  whenIdle() {
    return this.idle ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }

  kick() {
    this.onChange();
    if (this.inflight || this.timer) return;
    for (const [folder, edits] of this.pending) {
      if (edits.size === 0 || this.blocked.has(folder)) continue;
      this.pending.set(folder, new Map());
      this.inflight = { folder, edits };
      this.send(this.inflight);
      this.onChange();
      return;
    }
    if (this.idle) this.waiters.splice(0).forEach((resolve) => resolve());
  }

  async send(batch) {
    try {
      this.seq += 1;
      const res = await api(`${folderPath(batch.folder)}/edits`, {
        method: 'POST',
        body: { edits: [...batch.edits.values()], client: this.client, seq: this.seq },
      });
      this.inflight = null;
      this.error = null;
      this.retryDelay = 0;
      this.onSaved(batch.folder, res);
    } catch (err) {
      this.inflight = null;
      if (err.status === 409) {
        this.restore(batch);
        this.blocked.add(batch.folder);
        this.onConflict(batch.folder, err.message);
      } else if (err.status >= 400 && err.status < 500) {
        // The server will never accept this batch (a bug, or the folder vanished): say so.
        this.error = err.message;
        this.onFailed(err.message, false);
      } else {
        this.restore(batch);
        this.error = err.message;
        this.retryDelay = Math.min(5000, Math.max(500, this.retryDelay * 2));
        this.onFailed(err.message, true);
        this.timer = setTimeout(() => {
          this.timer = null;
          this.kick();
        }, this.retryDelay);
      }
    }
    this.kick();
  }

  // The page is going away: send every unacknowledged edit in requests that survive it
  // (fetch keepalive; sendBeacon cannot carry the JSON type nor the token header). Keepalive
  // bodies are limited to 64 kB in all, hence the chunks.
  flush() {
    const folders = new Set([...this.pending.keys()]);
    if (this.inflight) folders.add(this.inflight.folder);
    for (const folder of folders) {
      const edits = this.editsFor(folder);
      for (let i = 0; i < edits.length; i += 400) {
        this.seq += 1;
        try {
          fetch(`${folderPath(folder)}/edits`, {
            method: 'POST',
            keepalive: true,
            headers: headers({ 'Content-Type': 'application/json' }),
            body: JSON.stringify({ edits: edits.slice(i, i + 400), client: this.client, seq: this.seq }),
          }).catch(() => {});
        } catch {
          // over the keepalive budget: the browser's leave-page warning already said so
        }
      }
    }
  }

  restore(batch) {
    const merged = new Map(batch.edits);
    for (const [k, e] of this.pending.get(batch.folder) || []) merged.set(k, e);
    this.pending.set(batch.folder, merged);
  }
}
