// Decoded-image cache with neighbour prefetch, so the next frame paints without waiting for a
// download and a PNG decode (a 1280x1024 PNG takes tens of ms to decode).
//
// Keys are "folder/image". At most `capacity` decoded bitmaps are kept (least recently used
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

  static key(folder, name) {
    return `${folder}/${name}`;
  }

  // The decoded bitmap if it is ready now (draw synchronously), else null.
  peek(folder, name) {
    const e = this.entries.get(ImageCache.key(folder, name));
    return e && e.bitmap ? e.bitmap : null;
  }

  // The displayed image is never evicted (closing it would blank the canvas on the next redraw).
  pin(folder, name) {
    this.pinned = ImageCache.key(folder, name);
  }

  get(folder, name) {
    const key = ImageCache.key(folder, name);
    let e = this.entries.get(key);
    if (e) {
      this.entries.delete(key); // re-insert: Map order is the LRU order
      this.entries.set(key, e);
      return e.promise;
    }
    e = { bitmap: null, promise: null };
    e.promise = fetchImage(folder, name).then(
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
  prefetch(folder, names) {
    this.queue = [];
    for (const name of names) {
      const key = ImageCache.key(folder, name);
      if (!this.entries.has(key) && !this.queue.some((q) => q.key === key)) {
        this.queue.push({ key, folder, name });
      }
    }
    this.pump();
  }

  pump() {
    while (this.running < this.parallel && this.queue.length) {
      const { folder, name } = this.queue.shift();
      this.running += 1;
      this.get(folder, name)
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
