// Agreeing with the server, mixed into App (labeler.js): acknowledged saves, conflicts with
// outside changes (another program wrote the label file: warn, write nothing until the
// person picks), the status poll, Ctrl+S, and extracting frames into an empty folder.
//
// Adding a server round trip: a method here that goes through this.serial() when it
// replaces the folder's data, so that it never interleaves with a folder load.

import { api, folderPath } from './api.js';
import * as ui from './panels.js';

const $ = (id) => document.getElementById(id);

export const Sync = {
  onSaved(folder, res) {
    const f = this.folder;
    if (f && f.name === folder && res.version === f.version + 1) f.version = res.version;
    // (a bigger jump means another tab saved too: poll() refreshes once the queue is idle)
    this.renderSaveState();
  },

  onConflict(folder, message) {
    this.conflict = folder;
    this.onDiskChanged(message, folder);
  },

  // Warn about an outside change of `folder`'s files; nothing is written until the user picks.
  onDiskChanged(message, folder = this.folder.name) {
    const unsaved = this.queue.editsFor(folder).length;
    const file = (this.folder && this.folder.name === folder && this.folder.labelFile) ||
      'the label file';
    const text = `${folder}: ${message || `${file} changed on disk (another program or ` +
      'server?). Nothing is overwritten until you reload.'}`;
    const buttons = unsaved
      ? [[`Reload and re-apply my ${unsaved} unsaved edit(s)`, () => this.reload(folder, true)],
        ['Reload and discard them', () => this.reload(folder, false)]]
      : [['Reload from disk', () => this.reload(folder, true)]];
    ui.showBanner(text, buttons);
    this.renderSaveState();
  },

  reload(name, keep) {
    return this.serial(async () => {
      const data = await api(`${folderPath(name)}/reload`, { method: 'POST', body: {} });
      if (!keep) this.queue.drop(name);
      if (this.conflict === name) this.conflict = null;
      ui.hideBanner();
      if (this.folder && this.folder.name === name) this.install(data, this.frameName);
      this.queue.unblock(name);
    });
  },

  async poll() {
    const f = this.folder;
    if (!f || this.polling) return;
    this.polling = true;
    try {
      const s = await api(`${folderPath(f.name)}/status`);
      if (f !== this.folder) return;
      if (s.disk_changed) {
        if ($('banner').hidden) this.onDiskChanged();
      } else if (s.version > f.version && this.queue.idle && !this.drag) {
        await this.serial(async () => this.install(await api(folderPath(f.name)),
          this.frameName || this.placeFrame));
      }
    } catch (err) {
      if (err.status === 0) ui.updateSaveState('error', err.message);
    } finally {
      this.polling = false;
    }
  },

  saveNow() {
    const f = this.folder;
    return this.serial(async () => {
      await this.queue.whenIdle();
      const res = await api(`${folderPath(f.name)}/save`, { method: 'POST', body: {} });
      if (res.version === f.version + 1) f.version = res.version;
      ui.toast(`saved ${f.name}`);
    });
  },

  extractFrames(n) {
    const f = this.folder;
    ui.toast(`extracting ${n} frames from ${f.name}…`);
    return this.serial(async () => {
      const data = await api(`${folderPath(f.name)}/extract`, { method: 'POST',
        body: { n, method: 'kmeans' } });
      this.install(data);
      const entry = this.folders.find((e) => e.name === f.name);
      if (entry) entry.n_images = data.images.length;
      ui.toast(`${data.images.length} frames in ${f.name}: label away`);
      this.render();
    });
  },
};
