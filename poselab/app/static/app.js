// The app's shell: the nav bar, the project the pages work on, client-side page routes and
// the job poller every page listens to.
//
// Routes live in the URL fragment: #/<page>/<project id>, so a reload or a shared link opens
// the same page of the same project; the last project is also kept in local storage.
// A page is a module with `mount(element, app)` returning {update(jobs), destroy()};
// document.body.dataset.ready names the page once its first data is on screen (tests and
// the benchmark wait on it). Adding a page: a module in pages/ and a line in PAGES.

import { api, enc, projectPath, withToken } from './api.js';
import { $, clear, h } from './dom.js';
import { Jobs } from './jobs.js';
import analyze from './pages/analyze.js';
import frames from './pages/frames.js';
import projects from './pages/projects.js';
import train from './pages/train.js';

const PAGES = { projects, frames, train, analyze };
const STORE = 'poselab-app:project';

class App {
  constructor() {
    this.jobs = new Jobs((message) => {
      if (message || this.offline) this.banner(message);
      this.offline = !!message;
    });
    this.pid = null;
    this.project = null; // {id, task, config, videos} of the current project (?brief=1)
    this.current = null; // {name, view}
    this.jobs.subscribe((list) => this.current && this.current.view && this.current.view.update
      && this.current.view.update(list));
    window.addEventListener('hashchange', () => this.route());
  }

  labelUrl(fragment = '') {
    return withToken(`label/${enc(this.pid)}/${fragment ? `#${fragment}` : ''}`);
  }

  // Show a page (re-rendered even when the URL does not change).
  go(page, pid = this.pid) {
    const hash = `#/${page}${pid ? `/${pid}` : ''}`;
    if (location.hash === hash) this.route();
    else location.hash = hash;
  }

  async setProject(pid) {
    if (!pid) {
      this.pid = null;
      this.project = null;
    } else {
      this.project = await api(`${projectPath(pid)}?brief=1`);
      this.pid = pid;
      localStorage.setItem(STORE, pid);
    }
    this.renderNav();
  }

  renderNav() {
    $('project-name').textContent = this.project ? this.project.task || this.project.config : 'no project open';
    for (const a of document.querySelectorAll('#pages a')) {
      const page = a.dataset.page;
      a.classList.toggle('current', this.current && this.current.name === page);
      a.classList.toggle('disabled', page !== 'projects' && !this.pid);
      a.href = page === 'label' && this.pid ? this.labelUrl() : `#/${page}${this.pid ? `/${this.pid}` : ''}`;
    }
  }

  banner(message) {
    const el = $('banner');
    el.hidden = !message;
    el.textContent = message || '';
  }

  async route() {
    const [, name = 'projects', pidInUrl] = location.hash.replace(/^#/, '').split('/');
    const pid = pidInUrl || localStorage.getItem(STORE);
    if (this.current && this.current.view && this.current.view.destroy) this.current.view.destroy();
    this.current = { name, view: null };
    document.body.dataset.ready = '';
    this.banner('');
    try {
      await this.setProject(pid);
    } catch (err) {
      localStorage.removeItem(STORE);
      await this.setProject(null);
      if (name !== 'projects') this.banner(`${err.message}: open a project first`);
    }
    if (name === 'label' && this.pid) {
      location.replace(this.labelUrl());
      return;
    }
    const page = PAGES[name] || PAGES.projects;
    if (name !== 'projects' && !this.pid) {
      this.banner('Open or create a project first.');
      this.go('projects', null);
      return;
    }
    this.renderNav();
    const root = clear($('page'));
    const view = await page.mount(root, this).catch((err) => {
      clear(root, h('p', { class: 'error' }, err.message));
      return null;
    });
    if (this.current.name !== name) return; // navigated away meanwhile
    this.current.view = view;
    document.body.dataset.readyAt = String(Math.round(performance.now())); // for the benchmark
    document.body.dataset.ready = name;
  }
}

const app = new App();
window.poselabApp = app; // read-only hook for tests and the benchmark
app.route();
app.jobs.poll();
