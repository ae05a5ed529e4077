// Decoded-image cache with neighbour prefetch, so the next frame paints without waiting for a
// download and a PNG decode (a 1280x1024 PNG takes tens of ms to decode).
//
// Keys are strings chosen by the caller ("f:folder/image", "v:video/index"), each with the URL to
// fetch it from. At most `capacity` decoded bitmaps are kept (least recently used
// evicted; a 1280x1024 bitmap is 5 MB), and at most `parallel` prefetches run at once so the
// frame the user asked for is never queued behind them.

import { fetchImage } from './api.js';

export class ImageCache {
  constructor(capacity = 24, parallel = 3) {
    this.capacity = capacity;
    this.parallel = parallel;
    this.entries = new Map(); // key -> {promise, bitmap}
    this.queue = [];
    this.running = 0;
    this.pinned = null;
  }

  // The decoded bitmap if it is ready now (draw synchronously), else null.
  peek(key) {
    const e = this.entries.get(key);
    return e && e.bitmap ? e.bitmap : null;
  }

  has(key) {
    return this.entries.has(key);
  }

  // The displayed image is never evicted (closing it would blank the canvas on the next redraw).
  pin(key) {
    this.pinned = key;
  }

  get(key, url) {
    let e = this.entries.get(key);
    if (e) {
      this.entries.delete(key); // re-insert: Map order is the LRU order
      this.entries.set(key, e);
      return e.promise;
    }
    e = { bitmap: null, promise: null };
    e.promise = fetchImage(url, key.slice(2)).then(
      (bitmap) => {
        e.bitmap = bitmap;
        return bitmap;
      },
      (err) => {
        this.entries.delete(key); // let a later request retry
        throw err;
      },
    );
    this.entries.set(key, e);
    this.evict();
    return e.promise;
  }

  // Replaces what is still queued: only the neighbours of the frame now shown matter.
  // `items` are [key, url] pairs.
  prefetch(items, parallel = this.parallel) {
    this.queue = [];
    this.limit = parallel;
    for (const [key, url] of items) {
      if (!this.entries.has(key) && !this.queue.some((q) => q.key === key)) {
        this.queue.push({ key, url });
      }
    }
    this.pump();
  }

  pump() {
    while (this.running < (this.limit ?? this.parallel) && this.queue.length) {
      const { key, url } = this.queue.shift();
      this.running += 1;
      this.get(key, url)
        .catch(() => {})
        .finally(() => {
          this.running -= 1;
          this.pump();
        });
    }
  }

  evict() {
    for (const [key, e] of this.entries) {
      if (this.entries.size <= this.capacity) break;
      if (key === this.pinned) continue;
      this.entries.delete(key);
      if (e.bitmap) e.bitmap.close();
    }
  }
}
