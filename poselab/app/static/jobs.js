// The job queue as the page sees it: polling /api/jobs, the Jobs drawer with logs, and the
// job rows the pages show inline (progress, Stop).
//
// Progress comes from the job's progress.json (written by the job process): the step
// running and the last progress-bar line of the engine (tqdm), e.g. "mouse: scan: 45/300".

import { api, post } from './api.js';
import { $, action, clear, duration, h, toast, when } from './dom.js';

const ACTIVE = new Set(['queued', 'running']);

export function progressOf(job) {
  const p = job.progress || {};
  const steps = p.steps || (job.commands ? job.commands.length : 1);
  const step = p.step || 0;
  const m = /(\d+)\/(\d+)/.exec(p.line || '');
  const inStep = m && Number(m[2]) > 0 ? Math.min(1, Number(m[1]) / Number(m[2])) : 0;
  let fraction = job.status === 'done' ? 1 : (step + inStep) / steps;
  if (job.status === 'queued') fraction = 0;
  const command = (job.commands && job.commands[step]) || '';
  const what = command.split(' ')[1] || job.kind;
  const text = job.status === 'running'
    ? `step ${step + 1}/${steps} (${what})${p.line ? `: ${p.line.replace(/\|[^|]*\|/, '')}` : ''}`
    : '';
  return { fraction, text };
}

export function jobRow(job, { onLog } = {}) {
  const { fraction, text } = progressOf(job);
  const buttons = [];
  if (job.status === 'running') {
    buttons.push(action('Stop', () => post(`api/jobs/${job.id}/stop`), { class: 'small danger' }));
  } else if (job.status === 'queued') {
    buttons.push(action('Remove', () => post(`api/jobs/${job.id}/stop`), { class: 'small' }));
  }
  if (onLog && job.status !== 'queued') {
    buttons.push(h('button', { type: 'button', class: 'small', onclick: () => onLog(job) }, 'Log'));
  }
  const times = job.started
    ? `started ${when(job.started)}${job.ended ? `, took ${duration(job.ended - job.started)}` : ''}`
    : `queued ${when(job.created)}`;
  return h('li', { class: `job ${job.status}`, dataset: { job: job.id } },
    h('div', { class: 'head' },
      h('span', { class: 'title' }, job.title),
      h('span', { class: `tag ${job.status}` }, job.status),
      buttons),
    job.status === 'running' ? h('div', { class: 'bar' }, h('span', { style: { width: `${(fraction * 100).toFixed(1)}%` } })) : null,
    h('div', { class: 'line' }, text || job.note || times),
    text ? h('div', { class: 'line' }, times) : null);
}

export class Jobs {
  constructor(onOffline = () => {}) {
    this.onOffline = onOffline; // called with a message while the server does not answer, then null
    this.list = [];
    this.listeners = new Set();
    this.signature = '';
    this.timer = null;
    this.logJob = null;
    $('jobs-button').onclick = () => this.toggle(true);
    $('jobs-close').onclick = () => this.toggle(false);
  }

  get active() {
    return this.list.filter((j) => ACTIVE.has(j.status));
  }

  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  // Poll now and then every second while something is queued or running, else every 3 s.
  async poll() {
    clearTimeout(this.timer);
    try {
      this.list = await api('api/jobs');
      this.onOffline(null);
      const signature = JSON.stringify(this.list.map((j) => [j.id, j.status, j.progress]));
      if (signature !== this.signature) {
        this.signature = signature;
        this.render();
        for (const fn of this.listeners) fn(this.list);
      }
    } catch (err) {
      if (err.status === 0) this.onOffline(err.message); // the next poll retries
      else toast(err.message, true);
    }
    this.timer = setTimeout(() => this.poll(), this.active.length ? 1000 : 3000);
    if (this.logJob) this.showLog(this.logJob, false);
  }

  toggle(open) {
    $('jobs-drawer').hidden = !open;
    if (open) this.render();
  }

  render() {
    const running = this.list.filter((j) => j.status === 'running').length;
    const queued = this.list.filter((j) => j.status === 'queued').length;
    const button = $('jobs-button');
    button.textContent = running || queued
      ? `Jobs: ${running ? `${running} running` : ''}${running && queued ? ', ' : ''}${queued ? `${queued} queued` : ''}`
      : 'Jobs';
    button.classList.toggle('busy', running > 0);
    if ($('jobs-drawer').hidden) return;
    const items = this.list.slice(0, 50).map((j) => jobRow(j, { onLog: (job) => this.showLog(job, true) }));
    clear($('jobs-list'), items.length ? items : h('li', { class: 'empty' }, 'No jobs yet.'));
  }

  async showLog(job, scroll) {
    this.logJob = ACTIVE.has(job.status) || scroll ? job : null;
    $('log-panel').hidden = false;
    $('log-title').textContent = `Log: ${job.title}`;
    const pre = $('log-text');
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 20;
    try {
      pre.textContent = await api(`api/jobs/${job.id}/log`);
    } catch (err) {
      pre.textContent = err.message;
    }
    if (scroll || atEnd) pre.scrollTop = pre.scrollHeight;
    const current = this.list.find((j) => j.id === job.id);
    if (current && !ACTIVE.has(current.status) && !scroll) this.logJob = null;
  }
}
