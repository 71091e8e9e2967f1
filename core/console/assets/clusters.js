// The clusters list and one cluster's page: nodes, hardware, roles,
// processes with their tasks and logs, and the day-2 actions.
import * as api from './api.js';
import { el, field, table, status, errorBox, say, confirmDialog, nextId, timing } from './ui.js';
import { watchTasks } from './tasks.js';

// Live task tables by the slot they fill: the operation just started and
// the past process opened, so opening one does not stop the other.
const watchers = new Map();
function watch(slot, box, pid, opts) {
  if (watchers.has(slot)) watchers.get(slot).stop();
  watchers.set(slot, watchTasks(box, pid, opts));
}
export function stop() { watchers.forEach((w) => w.stop()); watchers.clear(); }

export async function renderList(main) {
  const [clusters, proc] = await Promise.all([api.get('/api/cluster'), api.get('/api/process/currentProcess')]);
  const banner = proc ? el('p', { class: 'card', id: 'resume' }, `Your install (process ${proc.id}, cluster ${proc.clusterId}) is at ${proc.processType}. `,
    el('a', { href: '#/wizard', text: 'Continue it' })) : null;
  const rows = clusters.map((c) => el('tr', {}, el('td', { text: String(c.id) }),
    el('td', {}, el('a', { href: `#/cluster/${c.id}`, text: c.name })), el('td', { text: c.createTime || '' })));
  main.replaceChildren(el('h1', { text: 'Clusters' }), banner,
    clusters.length ? table('Clusters you may see', ['Id', 'Name', 'Created'], rows, { id: 'clusters' }) : el('p', { class: 'note', text: 'No cluster yet.' }),
    el('div', { class: 'actions' }, el('a', { href: '#/wizard', text: proc ? 'Open the install wizard' : 'Install a new cluster' })));
}

async function optional(p) {
  try { return { data: await p }; } catch (e) { return { err: e }; }
}

// slot is a section's place while its call is under way.
function slot(id, what) {
  return el('div', { id: `${id}-slot`, 'aria-busy': 'true' }, el('p', { class: 'note', text: `Loading ${what}…` }));
}

function fill(box, p, render) {
  return p.then((r) => { box.replaceChildren(render(r)); box.removeAttribute('aria-busy'); });
}

// renderCluster resolves once the node table is on the page; the four
// calls start together and hardware, roles and processes fill their
// places as each answers (the page records both times).
export async function renderCluster(main, id) {
  const started = performance.now();
  const hwP = optional(api.get(`/api/agent/hardware/${id}`));
  const rolesP = optional(api.get(`/api/server/roleList?clusterId=${id}`));
  const procsP = optional(api.get(`/api/process?clusterId=${id}`));
  const st = await api.get(`/api/cluster/${id}/status`);
  const nodes = st.nodes || [];
  const nodeRows = nodes.map((n) => el('tr', {},
    el('td', { text: n.host }), el('td', { text: n.role + (n.feNodeType ? ` ${n.feNodeType}` : '') + (n.master ? ' (master)' : '') }),
    el('td', {}, status(n.status)), el('td', { text: n.alive ? 'yes' : 'no' }), el('td', { text: n.version || '' }),
    el('td', { text: n.agent || '' }), el('td', { class: 'resp', text: n.detail || '' })));
  const opBox = el('div', { id: 'operation' });
  const hwBox = slot('hardware', 'the hardware'), rolesBox = slot('roles', 'the roles'), procBox = slot('processes', 'the processes');
  const reloadProcesses = () => fill(procBox, optional(api.get(`/api/process?clusterId=${id}`)), (r) => processes(r, id));
  main.replaceChildren(el('h1', { text: `Cluster ${st.name} (${id})${st.destroyed ? ' — destroyed' : ''}` }),
    el('h2', { text: 'Nodes' }),
    nodes.length ? table('Every node, as the manager last checked it', ['Host', 'Role', 'Status', 'Alive', 'Version', 'Agent', 'Detail'], nodeRows, { id: 'nodes', tall: true })
      : el('p', { class: 'note', text: 'No node yet.' }),
    el('h2', { text: 'Actions' }), actions(id, st, nodes, opBox, reloadProcesses), opBox,
    el('h2', { text: 'Hardware' }), hwBox,
    el('h2', { text: 'Roles' }), rolesBox,
    el('h2', { text: 'Processes' }), procBox);
  Promise.all([fill(hwBox, hwP, hardware), fill(rolesBox, rolesP, roleList), fill(procBox, procsP, (r) => processes(r, id))])
    .then(() => timing('cluster-complete', started));
}

function hardware(hw) {
  if (hw.err) return errorBox(hw.err);
  const rows = hw.data.map((h) => el('tr', {}, el('td', { text: h.host }), el('td', { text: h.cpu || '' }), el('td', { text: String(h.cores || '') }),
    el('td', { text: h.totalMemory || '' }),
    el('td', { text: (h.disks || []).map((d) => `${d.mount}: ${gib(d.freeBytes)} free of ${gib(d.totalBytes)}`).join('; ') })));
  return table('Hardware per host, as each agent reported it', ['Host', 'CPU', 'Cores', 'Memory', 'Disks'], rows, { id: 'hardware', tall: true });
}

const gib = (b) => `${(b / 1073741824).toFixed(1)} GiB`;

function roleList(r) {
  if (r.err) return errorBox(r.err);
  const rows = r.data.map((x) => el('tr', {}, el('td', { text: x.host }), el('td', { text: x.role }), el('td', { text: x.feNodeType || '' }),
    el('td', { text: x.installDir || '' }), el('td', { text: x.register })));
  return table('Roles installed on the hosts (register: what the cluster itself reports)', ['Host', 'Role', 'FE type', 'Install dir', 'Registered'], rows, { id: 'roles', tall: true });
}

// processes lists every process of the cluster, newest first; Tasks opens
// one's tasks with their logs below the list. currentTasks answers the
// tasks of a process's current step: for a finished install, its last.
function processes(p, clusterId) {
  if (p.err) return errorBox(p.err);
  const detail = el('div', { id: 'process-tasks' });
  const open = (x) => {
    const finished = x.finish === 'YES';
    const h = el('h3', { tabindex: '-1', text: `Process ${x.id}: ${x.processType}, ${x.status}${finished ? ', finished' : ''}` });
    const note = el('p', { class: 'note', text: finished
      ? 'Finished: the tasks of the step it ended at, with their logs; they can no longer be retried, skipped or unskipped.'
      : 'Unfinished: a failed task can be retried or skipped, and a skipped one unskipped while the process is at its step.' });
    detail.replaceChildren(h, note, el('div'));
    watch('detail', detail.lastChild, x.id, { actions: !finished });
    h.focus();
  };
  const rows = p.data.map((x) => el('tr', { 'data-process': String(x.id) }, el('td', { text: String(x.id) }), el('td', { text: x.processType }),
    el('td', {}, status(x.status)), el('td', { text: x.finish === 'YES' ? 'yes' : 'no' }), el('td', { text: x.createTime || '' }), el('td', { text: x.updateTime || '' }),
    el('td', {}, el('button', { type: 'button', class: 'secondary', text: 'Tasks', 'aria-label': `Tasks of process ${x.id} (${x.processType})`, onclick: () => open(x) }))));
  if (!rows.length) return el('div', { id: 'processes' }, el('p', { class: 'note', text: `Cluster ${clusterId} has no process yet.` }));
  return el('div', { id: 'processes' }, table('Every process of the cluster, newest first', ['Id', 'Type', 'Status', 'Finished', 'Created', 'Updated', ''], rows, { tall: true }), detail);
}

// actions are the day-2 operations, each behind a confirmation dialog.
function actions(id, st, nodes, opBox, reloadProcesses) {
  const err = el('div');
  const run = async (path, body, label) => {
    err.replaceChildren();
    try {
      const r = await api.post(`/api/cluster/${id}/${path}`, body);
      say(`${label}: process ${r.processId} started.`);
      opBox.replaceChildren(el('h3', { text: `${label} (process ${r.processId})` }), el('div'));
      let was = null;
      watch('operation', opBox.lastChild, r.processId, { onChange: (ts) => {
        const state = opBox.lastChild.dataset.state;
        if (state !== was && state !== 'running') reloadProcesses();
        was = state;
      } });
      reloadProcesses();
    } catch (e) { err.replaceChildren(errorBox(e)); }
  };
  const nodePicker = () => {
    const boxes = nodes.map((n) => { const cb = el('input', { type: 'checkbox', id: nextId('n') }); return { n, cb, l: el('label', { class: 'inline', for: cb.id }, cb, `${n.role} on ${n.host}`) }; });
    return { boxes, node: el('fieldset', {}, el('legend', { text: 'Nodes (none ticked: every node)' }), el('div', { class: 'grid' }, boxes.map((b) => b.l))),
      picked: () => boxes.filter((b) => b.cb.checked).map((b) => ({ host: b.n.host, role: b.n.role })) };
  };
  const simple = (label, path, extra) => el('button', { type: 'button', class: 'secondary', text: label, onclick: async () => {
    const pick = nodePicker();
    const extraField = extra ? extra() : null;
    if (!await confirmDialog(`${label} cluster ${st.name}?`, el('div', {}, pick.node, extraField && extraField.node), label)) return;
    const body = { nodes: pick.picked() };
    if (extraField) Object.assign(body, extraField.value());
    run(path, body, label);
  } });
  const rolling = () => { const cb = el('input', { type: 'checkbox', checked: true, id: nextId('f') }); return { node: el('label', { class: 'inline', for: cb.id }, cb, 'Rolling: one node at a time'), value: () => ({ rolling: cb.checked }) }; };
  const btns = [
    simple('Stop', 'stop'), simple('Start', 'start'), simple('Restart', 'restart', rolling),
    el('button', { type: 'button', class: 'secondary', text: 'Scale in', onclick: async () => {
      const pick = nodePicker();
      const force = el('input', { type: 'checkbox', id: nextId('f') }), purge = el('input', { type: 'checkbox', id: nextId('f') });
      if (!await confirmDialog(`Scale in cluster ${st.name}?`, el('div', {}, pick.node,
        el('label', { class: 'inline', for: force.id }, force, 'Force (no draining)'), ' ', el('label', { class: 'inline', for: purge.id }, purge, 'Purge data dirs')), 'Scale in', true)) return;
      run('scaleIn', { nodes: pick.picked(), force: force.checked, purge: purge.checked }, 'Scale in');
    } }),
    el('button', { type: 'button', class: 'secondary', text: 'Change config', onclick: async () => {
      const roles = [...new Set(nodes.map((n) => n.role))];
      const role = el('select', {}, roles.map((r) => el('option', { value: r, text: r })));
      const conf = el('textarea', { rows: '10', spellcheck: 'false' });
      const dry = el('input', { type: 'checkbox', checked: true, id: nextId('f') });
      if (!await confirmDialog(`Change a config of cluster ${st.name}`, el('div', {}, field('Role', role), field('The whole new config file', conf),
        el('label', { class: 'inline', for: dry.id }, dry, 'Dry run: report the changes only')), 'Apply')) return;
      run('config', { role: role.value, conf: conf.value, dryRun: dry.checked }, 'Change config');
    } }),
    el('button', { type: 'button', class: 'secondary', text: 'Upgrade', onclick: async () => {
      const url = el('input', { type: 'url' }), sha = el('input', { type: 'text' });
      if (!await confirmDialog(`Upgrade cluster ${st.name}?`, el('div', {}, field('Package URL', url), field('Package SHA-256 (optional)', sha)), 'Upgrade')) return;
      const body = { packageUrl: url.value.trim() };
      if (sha.value.trim()) body.packageSha256 = sha.value.trim();
      run('upgrade', body, 'Upgrade');
    } }),
    el('button', { type: 'button', class: 'danger', text: 'Destroy', onclick: async () => {
      const confirmName = el('input', { type: 'text', autocomplete: 'off' });
      const purge = el('input', { type: 'checkbox', id: nextId('f') });
      if (!await confirmDialog(`Destroy cluster ${st.name}?`, el('div', {}, el('p', { text: 'Every role is stopped and removed, every agent removes itself.' }),
        field(`Type the cluster's name (${st.name}) to confirm`, confirmName),
        el('label', { class: 'inline', for: purge.id }, purge, 'Purge data dirs too')), 'Destroy', true)) return;
      run('destroy', { confirm: confirmName.value, purge: purge.checked }, 'Destroy');
    } }),
  ];
  if (st.destroyed) btns.forEach((b) => { b.disabled = true; });
  return el('div', {}, el('div', { class: 'actions', id: 'cluster-actions' }, btns), err);
}
