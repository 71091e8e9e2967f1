// The install wizard: the API document's five steps as one page. Opening
// it while a process is unfinished shows that process's current step.
import * as api from './api.js';
import { el, field, errorBox, say, nextId, confirmDialog } from './ui.js';
import { watchTasks, settled, ended } from './tasks.js';

const STEPS = ['INSTALL_AGENT', 'INSTALL_SERVICE', 'DEPLOY_CONFIG', 'START_SERVICE', 'BUILD_CLUSTER'];
const TITLES = ['Hosts and agents', 'Roles', 'Configs', 'Start', 'Build the cluster'];

// What the user typed, kept while the page lives (never the SSH key).
const memo = { confs: {}, params: 'javaHome=/usr/lib/jvm/java-17-openjdk-amd64', placement: {}, step0: null };

let watcher = null;

export async function render(main) {
  if (watcher) { watcher.stop(); watcher = null; }
  const proc = await api.get('/api/process/currentProcess');
  const h = el('h1', { text: 'Install wizard' });
  const stepList = el('ol', { class: 'steps', 'aria-label': 'Steps' },
    STEPS.map((s, i) => {
      const cur = proc ? proc.processStep : 0;
      return el('li', { class: i < cur ? 'done' : '', 'aria-current': i === cur ? 'step' : null, text: TITLES[i] });
    }));
  if (!proc) {
    main.replaceChildren(h, stepList, await hostsForm());
    return;
  }
  main.replaceChildren(h, stepList, await stepView(proc));
}

export function stop() { if (watcher) { watcher.stop(); watcher = null; } }

const rerender = () => render(document.getElementById('main'));

function errorSlot() { return el('div', { class: 'form-error' }); }

async function submit(form, errBox, fn) {
  const btns = form.querySelectorAll('button');
  btns.forEach((b) => { b.disabled = true; });
  errBox.replaceChildren();
  try {
    await fn();
  } catch (e) {
    errBox.replaceChildren(errorBox(e));
    btns.forEach((b) => { b.disabled = false; });
    const a = errBox.querySelector('[role=alert]');
    if (a) { a.tabIndex = -1; a.focus(); }
  }
}

// Step 0: the cluster, the hosts, SSH and the package.
async function hostsForm() {
  const clusters = await api.get('/api/cluster');
  const clusterSel = el('select', { name: 'cluster' },
    el('option', { value: 'new', text: 'A new cluster…' }),
    clusters.map((c) => el('option', { value: String(c.id), text: `${c.name} (cluster ${c.id}): add hosts` })));
  const newName = el('input', { type: 'text', name: 'clusterName', autocomplete: 'off', placeholder: 'prod-olap' });
  const newNameField = field('New cluster name', newName, 'Letters, digits, . _ and -.');
  clusterSel.addEventListener('change', () => { newNameField.hidden = clusterSel.value !== 'new'; });
  const hosts = el('textarea', { name: 'hosts', rows: '4', spellcheck: 'false', placeholder: '10.0.0.11\n10.0.0.12' });
  const user = el('input', { type: 'text', name: 'user', value: 'root', autocomplete: 'off' });
  const port = el('input', { type: 'number', name: 'sshPort', value: '22', min: '1', max: '65535' });
  const key = el('input', { type: 'file', name: 'sshKey' });
  const pass = el('input', { type: 'password', name: 'passphrase', autocomplete: 'off' });
  const dir = el('input', { type: 'text', name: 'installDir', value: '/opt/doris' });
  const pkg = el('input', { type: 'url', name: 'packageUrl', placeholder: 'https://…/apache-doris-2.0.3-bin-x64.tar.gz' });
  const err = errorSlot();
  const form = el('form', { class: 'card', id: 'step-hosts', novalidate: true },
    el('h2', { text: 'Hosts, SSH and package' }),
    field('Cluster', clusterSel), newNameField,
    field('Hosts', hosts, 'One host name or address a line (or separated by commas).'),
    field('SSH user', user), field('SSH port', port),
    field('SSH private key', key, 'PEM file (RSA, ECDSA or ed25519). It is read in this browser and sent once; it is never shown again.'),
    field('Key passphrase (if any)', pass),
    field('Install directory', dir),
    field('Doris package URL', pkg, 'http:// or https://; its published .sha512 is checked.'),
    err, el('div', { class: 'actions' }, el('button', { type: 'submit', text: 'Install agents' })));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit(form, err, async () => {
      let sshKey = '';
      if (key.files && key.files[0]) sshKey = await key.files[0].text();
      let clusterId = clusterSel.value;
      if (clusterId === 'new') {
        const c = await api.post('/api/cluster', { name: newName.value.trim() });
        clusterId = String(c.id);
      }
      const body = { clusterId, hosts: splitHosts(hosts.value), user: user.value.trim(), sshPort: Number(port.value),
        sshKey, installDir: dir.value.trim(), packageUrl: pkg.value.trim() };
      if (pass.value) body.passphrase = pass.value;
      memo.step0 = { user: body.user, sshPort: body.sshPort, installDir: body.installDir, packageUrl: body.packageUrl };
      try {
        await api.post('/api/server/installAgent', body);
      } finally {
        sshKey = ''; body.sshKey = ''; key.value = ''; pass.value = '';
      }
      say('Installing the agents.');
      await rerender();
    });
  });
  return form;
}

// Step 0 again: new SSH credentials (a wrong key, user or port) for the
// hosts whose agent failed. installAgent with the processId runs the
// failed INSTALL_AGENT tasks again and adds hosts it does not know; it
// also replaces the package URL and install directory, so both are asked.
function rerunForm(proc, ts) {
  const failed = [...new Set(ts.filter((t) => t.status === 'FAILURE' && t.skip !== 'YES').map((t) => t.host))];
  const m = memo.step0 || {};
  const hosts = el('textarea', { name: 'hosts', rows: '3', spellcheck: 'false' });
  hosts.value = failed.join('\n');
  const user = el('input', { type: 'text', name: 'user', value: m.user || 'root', autocomplete: 'off' });
  const port = el('input', { type: 'number', name: 'sshPort', value: String(m.sshPort || 22), min: '1', max: '65535' });
  const key = el('input', { type: 'file', name: 'sshKey' });
  const pass = el('input', { type: 'password', name: 'passphrase', autocomplete: 'off' });
  const dir = el('input', { type: 'text', name: 'installDir', value: m.installDir || '' });
  const pkg = el('input', { type: 'url', name: 'packageUrl', value: m.packageUrl || '' });
  const err = errorSlot();
  const form = el('form', { class: 'card', id: 'step-rerun', novalidate: true },
    el('h2', { text: 'Install the failed agents again' }),
    el('p', { class: 'note', text: `The agent failed on ${failed.join(', ')}. Read a task's log above; if the SSH key, user or port was wrong, give new ones here. The agents that are installed stay; a host added to the list is installed too.` }),
    field('Hosts', hosts, 'The failed hosts; one a line.'),
    field('SSH user', user), field('SSH port', port),
    field('SSH private key', key, 'PEM file. It is sent once and replaces the process\'s key; it is never shown again.'),
    field('Key passphrase (if any)', pass),
    field('Install directory', dir, 'As in the first form: it replaces the process\'s.'),
    field('Doris package URL', pkg, 'As in the first form: it replaces the process\'s.'),
    err, el('div', { class: 'actions' }, el('button', { type: 'submit', text: 'Install the agents again' })));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit(form, err, async () => {
      let sshKey = '';
      if (key.files && key.files[0]) sshKey = await key.files[0].text();
      const body = { processId: proc.id, clusterId: proc.clusterId, hosts: splitHosts(hosts.value), user: user.value.trim(), sshPort: Number(port.value),
        sshKey, installDir: dir.value.trim(), packageUrl: pkg.value.trim() };
      if (pass.value) body.passphrase = pass.value;
      memo.step0 = { user: body.user, sshPort: body.sshPort, installDir: body.installDir, packageUrl: body.packageUrl };
      try {
        await api.post('/api/server/installAgent', body);
      } finally {
        sshKey = ''; body.sshKey = ''; key.value = ''; pass.value = '';
      }
      say('Installing the failed agents again with the new credentials.');
      await rerender();
    });
  });
  return form;
}

function splitHosts(s) { return s.split(/[\s,]+/).map((x) => x.trim()).filter(Boolean); }

// stepView: the current step's tasks live, and below them what can come
// next: the next step's form once every task is SUCCESS or skipped.
async function stepView(proc) {
  const step = proc.processStep;
  const box = el('section', { class: 'card', id: 'step-tasks', 'aria-labelledby': 'step-title' });
  const title = el('h2', { id: 'step-title', text: `Step ${step + 1}: ${TITLES[step]} (${STEPS[step]}) of process ${proc.id}, cluster ${proc.clusterId}` });
  const tasksBox = el('div', { id: 'tasks' });
  const next = el('div', { id: 'next' });
  const controls = el('div', { class: 'actions' });
  const err = errorSlot();
  box.append(title, tasksBox, err, controls);
  let lastKey = '';
  watcher = watchTasks(tasksBox, proc.id, {
    onChange: (ts) => {
      const key = ts.map((t) => `${t.id}:${t.status}:${t.skip}`).join(',');
      if (key === lastKey) return;
      lastKey = key;
      const running = ts.some((t) => !ended(t));
      controls.replaceChildren(...stepControls(proc, ts, running, err));
      if (running) { next.replaceChildren(); return; }
      if (step === 0 && ts.some((t) => t.status === 'FAILURE' && t.skip !== 'YES')) { next.replaceChildren(rerunForm(proc, ts)); return; }
      if (step === 2) { next.replaceChildren(configsForm(proc, ts, true)); }
      if (ts.length > 0 && ts.every(settled)) {
        if (step === 2) next.append(startForm(proc, ts));
        else next.replaceChildren(nextForm(proc, ts));
      } else if (step !== 2) next.replaceChildren();
      const skipped = ts.filter((t) => t.skip === 'YES').length;
      say(!ts.every(settled) ? `Step ${TITLES[step]}: a task failed.`
        : skipped ? `Step ${TITLES[step]} is done; ${skipped} skipped ${skipped === 1 ? 'task is' : 'tasks are'} left out of the later steps (Unskip brings one back while the process is at this step).`
          : `Step ${TITLES[step]} is done.`);
    },
  });
  return el('div', {}, box, next);
}

function stepControls(proc, ts, running, err) {
  const out = [];
  if (proc.processStep === 3 && !running) {
    out.push(el('button', { type: 'button', class: 'secondary', text: 'Back to configs', onclick: async () => {
      if (!await confirmDialog('Back to configs?', el('p', { text: 'Every role this step started is stopped; then you can deploy new configs.' }), 'Go back')) return;
      try { await api.post(`/api/process/back/${proc.id}`, {}); await rerender(); } catch (e) { err.replaceChildren(errorBox(e)); }
    } }));
  }
  if (!running) {
    out.push(el('button', { type: 'button', class: 'secondary', text: 'Cancel the install', onclick: async () => {
      if (!await confirmDialog('Cancel this install?', el('p', { text: `Process ${proc.id} ends CANCELED; what it installed stays.` }), 'Cancel the install', true)) return;
      try {
        const p = await api.post(`/api/process/installComplete/${proc.id}`, {});
        await rerender();
        say(`Process ${p.id} ended ${p.status}.`);
      } catch (e) { err.replaceChildren(errorBox(e)); }
    } }));
  }
  return out;
}

function nextForm(proc, ts) {
  switch (proc.processStep) {
    case 0: return rolesForm(proc, ts);
    case 1: return configsForm(proc, ts, false);
    case 3: return buildForm(proc, ts);
    case 4: return finishForm(proc);
  }
  return el('div');
}

// Step 1: role placement per host.
function rolesForm(proc, ts) {
  const hosts = [...new Set(ts.filter((t) => t.status === 'SUCCESS' && t.skip !== 'YES').map((t) => t.host))];
  const rows = hosts.map((h, i) => {
    const p = memo.placement[h] || { fe: i < 1 ? 'FOLLOWER' : '', be: true, broker: false };
    const fe = el('select', { 'aria-label': `FE on ${h}`, name: `fe-${h}` },
      ['', 'FOLLOWER', 'OBSERVER'].map((v) => el('option', { value: v, text: v || '—', selected: v === p.fe })));
    const master = el('input', { type: 'radio', name: 'master', value: h, 'aria-label': `Master FE on ${h}`, checked: !!p.master });
    const be = el('input', { type: 'checkbox', name: `be-${h}`, 'aria-label': `BE on ${h}`, checked: p.be });
    const broker = el('input', { type: 'checkbox', name: `broker-${h}`, 'aria-label': `BROKER on ${h}`, checked: p.broker });
    return { h, fe, master, be, broker, tr: el('tr', {}, el('th', { scope: 'row', text: h }), el('td', {}, fe), el('td', {}, master), el('td', {}, be), el('td', {}, broker)) };
  });
  const params = el('textarea', { name: 'params', rows: '4', spellcheck: 'false' });
  params.value = memo.params;
  const autoFix = el('input', { type: 'checkbox', name: 'autoFix', checked: true, id: nextId('f') });
  const sha = el('input', { type: 'text', name: 'packageSha256', autocomplete: 'off' });
  const err = errorSlot();
  const form = el('form', { class: 'card', id: 'step-roles', novalidate: true },
    el('h2', { text: 'Place the roles' }),
    el('p', { class: 'note', text: 'FE FOLLOWER or OBSERVER, the master (default: the first FOLLOWER), BE and BROKER per host.' }),
    el('div', { class: 'table-wrap tall' }, el('table', {},
      el('thead', {}, el('tr', {}, ['Host', 'FE', 'Master', 'BE', 'BROKER'].map((x) => el('th', { scope: 'col', text: x })))),
      el('tbody', {}, rows.map((r) => r.tr)))),
    field('Parameters for the role plugins', params, 'name=value a line: javaHome, minOpenFiles, minFreeDiskGB, startTimeout, stopTimeout, aliveTimeout, unregisterMode, brokerName.'),
    el('div', { class: 'field' }, el('label', { class: 'inline', for: autoFix.id }, autoFix, 'Let the plugins apply safe host fixes (autoFix)')),
    field('Package SHA-256 (optional)', sha, 'Without it the checksum published beside the package is used.'),
    err, el('div', { class: 'actions' }, el('button', { type: 'submit', text: 'Install roles' })));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit(form, err, async () => {
      const infos = [];
      memo.params = params.value;
      for (const r of rows) {
        memo.placement[r.h] = { fe: r.fe.value, master: r.master.checked, be: r.be.checked, broker: r.broker.checked };
        if (r.fe.value) {
          const info = { host: r.h, role: 'FE', feNodeType: r.fe.value };
          if (r.master.checked) info.master = true;
          infos.push(info);
        }
        if (r.be.checked) infos.push({ host: r.h, role: 'BE' });
        if (r.broker.checked) infos.push({ host: r.h, role: 'BROKER' });
      }
      const body = { processId: proc.id, installInfos: infos, params: parseParams(params.value), autoFix: autoFix.checked };
      if (sha.value.trim()) body.packageSha256 = sha.value.trim();
      await api.post('/api/agent/installService', body);
      await rerender();
    });
  });
  return form;
}

function parseParams(s) {
  const out = {};
  for (const line of s.split('\n')) {
    const l = line.trim();
    if (!l || l.startsWith('#')) continue;
    const i = l.indexOf('=');
    if (i < 0) out[l] = ''; else out[l.slice(0, i).trim()] = l.slice(i + 1).trim();
  }
  return out;
}

// rolesOf groups tasks' hosts by role, in first-seen order.
function rolesOf(ts) {
  const m = new Map();
  for (const t of ts) {
    if (!t.taskRole || t.skip === 'YES' || t.status !== 'SUCCESS' && !(t.status === 'FAILURE')) continue;
    if (!m.has(t.taskRole)) m.set(t.taskRole, []);
    if (!m.get(t.taskRole).includes(t.host)) m.get(t.taskRole).push(t.host);
  }
  return m;
}

// defaultConf is a starting config for a role: Doris's ports and
// priority_networks guessed as the /24 of the first host.
export function defaultConf(role, hosts) {
  const m = /^(\d+\.\d+\.\d+)\.\d+$/.exec(hosts[0] || '');
  const net = m ? `priority_networks = ${m[1]}.0/24` : '# priority_networks = 10.0.0.0/24';
  const java = parseParams(memo.params).javaHome;
  const jh = java ? [`JAVA_HOME = ${java}`] : [];
  switch (role) {
    case 'FE': return ['LOG_DIR = ${DORIS_HOME}/log', 'JAVA_OPTS="-Xmx1024m -XX:+UseG1GC"', 'sys_log_level = INFO',
      'meta_dir = ${DORIS_HOME}/doris-meta', 'http_port = 8030', 'rpc_port = 9020', 'query_port = 9030', 'edit_log_port = 9010', net, ...jh, ''].join('\n');
    case 'BE': return ['PPROF_TMPDIR="$DORIS_HOME/log/"', 'sys_log_level = INFO', 'be_port = 9060', 'webserver_port = 8040',
      'heartbeat_service_port = 9050', 'brpc_port = 8060', 'storage_root_path = ${DORIS_HOME}/storage', net, ...jh, ''].join('\n');
    case 'BROKER': return ['broker_ipc_port = 8000', 'client_expire_seconds = 300', ''].join('\n');
  }
  return '';
}

// Step 2: one editable config per role, defaults filled in. Shown again
// at DEPLOY_CONFIG (redeploy replaces the step's tasks).
function configsForm(proc, ts, again) {
  const roles = rolesOf(ts);
  const areas = [];
  const parts = [];
  for (const [role, hosts] of roles) {
    const ta = el('textarea', { name: `conf-${role}`, rows: '12', spellcheck: 'false' });
    ta.value = memo.confs[role] !== undefined ? memo.confs[role] : defaultConf(role, hosts);
    areas.push({ role, hosts, ta });
    parts.push(field(`${role} config (${hosts.join(', ')})`, ta));
  }
  const err = errorSlot();
  const form = el('form', { class: 'card', id: 'step-configs', novalidate: true },
    el('h2', { text: again ? 'Configs (deploy again to replace them)' : 'Configs per role' }),
    parts, err, el('div', { class: 'actions' }, el('button', { type: 'submit', text: again ? 'Deploy configs again' : 'Deploy configs' })));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit(form, err, async () => {
      for (const a of areas) memo.confs[a.role] = a.ta.value;
      await api.post('/api/agent/deployConfig', { processId: proc.id, deployConfigs: areas.map((a) => ({ hosts: a.hosts, role: a.role, conf: a.ta.value })) });
      await rerender();
    });
  });
  return form;
}

// Step 3: start every deployed role (unticked ones stay stopped).
function startForm(proc, ts) {
  const items = ts.filter((t) => t.taskRole && settled(t) && t.skip !== 'YES').map((t) => {
    const cb = el('input', { type: 'checkbox', checked: true, id: nextId('f') });
    return { host: t.host, role: t.taskRole, cb, node: el('label', { class: 'inline', for: cb.id }, cb, `${t.taskRole} on ${t.host}`) };
  });
  const err = errorSlot();
  const form = el('form', { class: 'card', id: 'step-start', novalidate: true },
    el('h2', { text: 'Start the roles' }),
    el('fieldset', {}, el('legend', { text: 'Roles to start' }), el('div', { class: 'grid' }, items.map((i) => i.node))),
    err, el('div', { class: 'actions' }, el('button', { type: 'submit', text: 'Start roles' })));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit(form, err, async () => {
      await api.post('/api/agent/startService', { processId: proc.id, dorisStarts: items.filter((i) => i.cb.checked).map((i) => ({ host: i.host, role: i.role })) });
      await rerender();
    });
  });
  return form;
}

// Step 4: join the started FEs and BEs (other member roles join too).
function buildForm(proc, ts) {
  const ok = ts.filter((t) => settled(t) && t.skip !== 'YES');
  const fe = [...new Set(ok.filter((t) => t.taskRole === 'FE').map((t) => t.host))];
  const be = [...new Set(ok.filter((t) => t.taskRole === 'BE').map((t) => t.host))];
  const pw = el('input', { type: 'password', name: 'adminPassword', autocomplete: 'new-password' });
  const err = errorSlot();
  const form = el('form', { class: 'card', id: 'step-build', novalidate: true },
    el('h2', { text: 'Build the cluster' }),
    el('p', {}, `FEs to join: ${fe.join(', ') || 'none'}. BEs to add: ${be.join(', ') || 'none'}.`),
    field('Password for the root account (optional)', pw, '8-128 printable characters; empty: a generated one, revealed once by an admin.'),
    err, el('div', { class: 'actions' }, el('button', { type: 'submit', text: 'Build the cluster' })));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit(form, err, async () => {
      const body = { processId: proc.id, feHosts: fe, beHosts: be };
      if (pw.value) body.adminPassword = pw.value;
      pw.value = '';
      await api.post('/api/agent/buildCluster', body);
      await rerender();
    });
  });
  return form;
}

function finishForm(proc) {
  const err = errorSlot();
  const form = el('form', { class: 'card', id: 'step-finish', novalidate: true },
    el('h2', { text: 'The cluster is built' }),
    el('p', { text: 'Finish the install: the SSH credentials are wiped and the cluster page opens.' }),
    err, el('div', { class: 'actions' }, el('button', { type: 'submit', text: 'Finish the install' })));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit(form, err, async () => {
      const p = await api.post(`/api/process/installComplete/${proc.id}`, {});
      location.hash = `#/cluster/${proc.clusterId}`;
      say(`Install process ${p.id} ended ${p.status} at ${p.processType}.`);
    });
  });
  return form;
}
