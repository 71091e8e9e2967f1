// A live table of a process's tasks: status, duration, response, the log
// tail on demand, retry and skip. It polls currentTasks every 500 ms while
// a task is queued or running, and stops once all have ended.
import * as api from './api.js';
import { el, status, duration, tail, errorBox, say } from './ui.js';

const POLL_MS = 500;
const LOG_LINES = 60;

export const ended = (t) => t.status === 'SUCCESS' || t.status === 'FAILURE';
export const settled = (t) => t.status === 'SUCCESS' || t.skip === 'YES';

// watchTasks renders process pid's current tasks into box. onChange(tasks)
// runs after every poll; the returned object stops the polling.
export function watchTasks(box, pid, { onChange = () => {}, actions = true } = {}) {
  const rows = new Map();
  const openLogs = new Set();
  const tbody = el('tbody');
  const err = el('div');
  const summary = el('p', { class: 'note', 'aria-live': 'polite' });
  box.replaceChildren(summary, err, el('div', { class: 'table-wrap tall' },
    el('table', { class: 'tasks', 'data-process': String(pid) },
      el('caption', { class: 'note', style: 'text-align:left;padding:.3rem .6rem', text: `Tasks of process ${pid}` }),
      el('thead', {}, el('tr', {}, ['Task', 'Host', 'Type', 'Role', 'Status', 'Duration', 'Response', 'Actions'].map((h) => el('th', { scope: 'col', text: h })))),
      tbody)));
  let timer = null, stopped = false, last = [];

  async function act(kind, t) {
    try {
      await api.post(`/api/process/task/${kind}/${t.id}`, {});
      const done = { retry: 'Retrying', skip: 'Skipped', unskip: 'Unskipped' }[kind];
      say(`${done} task ${t.id} (${t.taskType} on ${t.host || 'the cluster'}).`);
      poll();
    } catch (e) { err.replaceChildren(errorBox(e)); }
  }

  async function showLog(t, cell) {
    try {
      const l = await api.get(`/api/process/task/log/${t.id}`);
      cell.replaceChildren(
        el('div', { class: 'note', text: `Task ${t.id} (${t.taskType} on ${t.host || 'the cluster'}) answered:` }),
        el('pre', { class: 'log response', tabindex: '0', 'aria-label': `response of task ${t.id}`, text: t.response || '(nothing)' }),
        el('div', { class: 'note', text: `Log of task ${t.id}${l.logPath ? ' (' + l.logPath + ' on the host)' : ''}, last ${LOG_LINES} lines:` }),
        el('pre', { class: 'log tail', tabindex: '0', 'aria-label': `log of task ${t.id}`, text: tail(l.log, LOG_LINES) || '(empty)' }));
    } catch (e) { cell.replaceChildren(errorBox(e)); }
  }

  function row(t) {
    let r = rows.get(t.id);
    if (!r) {
      const cells = {};
      for (const k of ['id', 'host', 'type', 'role', 'status', 'dur', 'resp', 'act']) cells[k] = el('td');
      cells.resp.className = 'resp';
      const tr = el('tr', { 'data-task': String(t.id) }, Object.values(cells));
      const logCell = el('td', { colspan: '8' });
      const logRow = el('tr', { class: 'logrow', hidden: true }, logCell);
      r = { tr, cells, logRow, logCell, key: '' };
      rows.set(t.id, r);
    }
    const s = t.skip === 'YES' ? 'SKIPPED' : t.status;
    r.cells.id.textContent = String(t.id);
    r.cells.host.textContent = t.host || '(cluster)';
    r.cells.type.textContent = t.taskType;
    r.cells.role.textContent = t.taskRole || '';
    // A skipped task ended FAILURE and was given up: said in words, not by
    // colour alone.
    r.cells.status.replaceChildren(status(s), t.skip === 'YES' ? el('span', { class: 'hint', text: ' failed, left out of later steps' }) : '');
    r.tr.classList.toggle('skipped', t.skip === 'YES');
    r.cells.dur.textContent = duration(t);
    r.cells.resp.textContent = tail(t.response || '', 3);
    const key = `${s}`;
    if (key !== r.key) {
      r.key = key;
      const logBtn = el('button', { type: 'button', class: 'secondary', 'aria-expanded': String(openLogs.has(t.id)), text: 'Log',
        'aria-label': `Log of task ${t.id} (${t.taskType} on ${t.host})` });
      logBtn.addEventListener('click', () => {
        const open = !openLogs.has(t.id);
        if (open) openLogs.add(t.id); else openLogs.delete(t.id);
        logBtn.setAttribute('aria-expanded', String(open));
        r.logRow.hidden = !open;
        if (open) showLog(t, r.logCell);
      });
      const btns = [logBtn];
      if (actions && t.status === 'FAILURE' && t.skip !== 'YES') {
        btns.push(el('button', { type: 'button', text: 'Retry', 'aria-label': `Retry task ${t.id} (${t.taskType} on ${t.host})`, onclick: () => act('retry', t) }));
        btns.push(el('button', { type: 'button', class: 'secondary', text: 'Skip', 'aria-label': `Skip task ${t.id} (${t.taskType} on ${t.host})`, onclick: () => act('skip', t) }));
      }
      // currentTasks lists only the current step's tasks, so a skipped one
      // of an unfinished process is at its step: unskip is allowed.
      if (actions && t.skip === 'YES') {
        btns.push(el('button', { type: 'button', class: 'secondary', text: 'Unskip', 'aria-label': `Unskip task ${t.id} (${t.taskType} on ${t.host})`, onclick: () => act('unskip', t) }));
      }
      r.cells.act.replaceChildren(el('div', { class: 'actions' }, btns));
      if (openLogs.has(t.id)) showLog(t, r.logCell);
    }
    return r;
  }

  async function poll() {
    clearTimeout(timer);
    if (stopped) return;
    let ts;
    try {
      ts = await api.get(`/api/process/${pid}/currentTasks`);
      err.replaceChildren();
    } catch (e) {
      err.replaceChildren(errorBox(e));
      if (e.status !== 401 && e.status !== 403 && e.status !== 404) timer = setTimeout(poll, POLL_MS * 4);
      return;
    }
    if (stopped) return;
    last = ts;
    const order = ts.map((t) => row(t));
    const want = order.flatMap((r) => [r.tr, r.logRow]);
    if (want.length !== tbody.children.length || want.some((n, i) => tbody.children[i] !== n)) tbody.replaceChildren(...want);
    const n = (s) => ts.filter((t) => t.status === s).length;
    const skipped = ts.filter((t) => t.skip === 'YES').length;
    const running = ts.some((t) => !ended(t));
    summary.textContent = `${ts.length} tasks: ${n('SUCCESS')} succeeded, ${n('FAILURE') - skipped} failed, ${skipped} skipped, ${n('RUNNING')} running, ${n('SUBMITTED')} queued.` +
      (running ? ' Updating live…' : ' All tasks have ended.');
    box.dataset.state = running ? 'running' : (ts.every(settled) ? 'done' : 'failed');
    onChange(ts);
    if (running) timer = setTimeout(poll, POLL_MS);
  }
  poll();
  return { stop() { stopped = true; clearTimeout(timer); }, refresh: poll, tasks: () => last };
}
