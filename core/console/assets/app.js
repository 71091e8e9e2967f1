// The console's entry: sign-in, the header, and the routes of the one
// page (#/clusters, #/cluster/ID, #/wizard).
import * as api from './api.js';
import { el, field, errorBox, say, timing } from './ui.js';
import * as wizard from './wizard.js';
import * as clusters from './clusters.js';

const main = document.getElementById('main');
let me = null;

function showSignedIn(s) {
  me = s;
  document.getElementById('nav').hidden = !s;
  document.getElementById('who').hidden = !s;
  document.getElementById('who-name').textContent = s ? `${s.user} (${s.role})` : '';
}

function loginPage(reason) {
  showSignedIn(null);
  const started = performance.now();
  const tok = el('input', { type: 'password', name: 'token', autocomplete: 'off', required: true, spellcheck: 'false' });
  const err = el('div');
  if (reason) err.append(el('p', { class: 'note', text: reason }));
  const form = el('form', { class: 'card', id: 'login', novalidate: true },
    el('h1', { text: 'Sign in' }),
    field('API token', tok, 'An API token (dm_…): the admin token is in <data-dir>/admin.token, others come from "dorismanager token create". It is sent once; the browser keeps only a session cookie.'),
    err, el('div', { class: 'actions' }, el('button', { type: 'submit', text: 'Sign in' })));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const value = tok.value.trim();
    tok.value = '';
    err.replaceChildren();
    try {
      showSignedIn(await api.signIn(value));
      say('');
      if (!location.hash || location.hash === '#/login') location.hash = '#/clusters'; else route();
    } catch (e) {
      err.replaceChildren(errorBox(e));
      tok.focus();
    }
  });
  main.replaceChildren(form);
  tok.focus();
  timing('login', started);
}

async function route() {
  wizard.stop();
  clusters.stop();
  if (!me) { loginPage(); return; }
  const h = location.hash || '#/clusters';
  const started = performance.now();
  let page = 'clusters';
  try {
    let m;
    if ((m = /^#\/cluster\/(\d+)$/.exec(h))) { page = 'cluster'; await clusters.renderCluster(main, m[1]); }
    else if (h === '#/wizard') { page = 'wizard'; await wizard.render(main); }
    else { await clusters.renderList(main); }
    timing(page, started);
    main.dataset.page = page;
  } catch (e) {
    if (me) main.replaceChildren(errorBox(e));
  }
}

api.setSignedOutHandler((msg) => { if (me) loginPage(msg); });

document.getElementById('signout').addEventListener('click', async () => {
  try { await api.signOut(); } catch (e) { /* the session is gone either way */ }
  me = null;
  location.hash = '#/login';
  loginPage('Signed out.');
});

window.addEventListener('hashchange', route);

(async () => {
  try { showSignedIn(await api.session()); } catch (e) { main.replaceChildren(errorBox(e)); return; }
  route();
})();
