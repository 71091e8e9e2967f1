// Small DOM helpers shared by the pages.
export function el(tag, attrs = {}, ...kids) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') n.className = v;
    else if (k === 'text') n.textContent = v;
    else if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
    else if (v === true) n.setAttribute(k, '');
    else n.setAttribute(k, v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined && k !== false) n.append(k instanceof Node ? k : String(k));
  return n;
}

let uid = 0;
export const nextId = (p) => `${p}-${++uid}`;

// field is a labelled input, select or textarea.
export function field(label, control, hint) {
  if (!control.id) control.id = nextId('f');
  const parts = [el('label', { for: control.id, text: label }), control];
  if (hint) { const h = el('div', { class: 'hint', id: control.id + '-hint', text: hint }); control.setAttribute('aria-describedby', h.id); parts.push(h); }
  return el('div', { class: 'field' }, parts);
}

export function table(caption, headers, rows, opts = {}) {
  const t = el('table', opts.id ? { id: opts.id } : {},
    el('caption', { class: 'note', text: caption, style: 'text-align:left;padding:.3rem .6rem' }),
    el('thead', {}, el('tr', {}, headers.map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, rows));
  return el('div', { class: 'table-wrap' + (opts.tall ? ' tall' : '') }, t);
}

export function status(s, extra = '') { return el('span', { class: `st st-${s}${extra}`, text: s }); }

export function errorBox(e) { return el('div', { class: 'error', role: 'alert', text: e && e.message ? e.message : String(e) }); }

export function say(msg) { document.getElementById('status').textContent = msg || ''; }

// confirmDialog asks before an action; resolves true when confirmed.
export function confirmDialog(title, body, confirmLabel = 'Confirm', danger = false) {
  return new Promise((resolve) => {
    const ok = el('button', { type: 'submit', class: danger ? 'danger' : '', value: 'ok', text: confirmLabel });
    const cancel = el('button', { type: 'button', class: 'secondary', text: 'Cancel' });
    const titleId = nextId('dlg');
    const d = el('dialog', { 'aria-labelledby': titleId },
      el('form', { method: 'dialog' }, el('h2', { id: titleId, text: title }), body, el('div', { class: 'actions' }, ok, cancel)));
    cancel.addEventListener('click', () => d.close('cancel'));
    d.addEventListener('close', () => { resolve(d.returnValue === 'ok'); d.remove(); });
    document.body.append(d);
    d.showModal();
    ok.focus();
  });
}

// duration of a task: end (or now) minus start, as "12.3 s".
export function duration(t) {
  if (!t.startTime) return '';
  const start = Date.parse(t.startTime);
  const end = t.endTime ? Date.parse(t.endTime) : Date.now();
  const s = Math.max(0, (end - start) / 1000);
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

export function tail(text, lines) {
  const ls = (text || '').replace(/\n$/, '').split('\n');
  return ls.slice(-lines).join('\n');
}

// timing records how long a page took to render (for BENCHMARKS.md).
export function timing(page, started) {
  const ms = performance.now() - started;
  performance.measure('page:' + page, { start: started, end: performance.now() });
  (window.__consoleTimings = window.__consoleTimings || []).push({ page, ms });
}
