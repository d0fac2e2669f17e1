// @ts-check
// Hash router: #/runs, #/new, #/new?clone=7, #/runs/7, #/compare?ids=3,7&metric=val_error, #/sweeps, #/sweeps/new,
// #/sweeps/4, #/workers.  With no token, or when the server answers 401, the sign-in view replaces the page (the hash stays,
// so signing in opens the page the user wanted).
import {me, onUnauthorized, setToken, token} from './api.js';
import {fill, h, lifecycle} from './dom.js';
import {purgeAll} from './charts.js';
import * as runsView from './views/runs.js';
import * as newView from './views/new.js';
import * as runView from './views/run.js';
import * as compareView from './views/compare.js';
import * as sweepsView from './views/sweeps.js';
import * as sweepView from './views/sweep.js';
import * as signinView from './views/signin.js';
import * as workersView from './views/workers.js';
/** @import {Life} from './dom.js' */
/** @import {Me} from './types' */

/** A page: mount(root, args, life) fills root; life ends when the route changes. */
/** @typedef {{mount: (root: HTMLElement, args: any, life: Life) => void}} View */

const main = /** @type {HTMLElement} */ (document.getElementById('main'));
const userBox = /** @type {HTMLElement} */ (document.getElementById('user-box'));
/** @type {Life | null} */
let current = null;

function parse() {
  let raw = location.hash.replace(/^#/, '');
  if (raw.startsWith('token=')) {  // sign-in link: keep the token, drop it from the address bar
    setToken(decodeURIComponent(raw.slice(6)));
    userBox.replaceChildren();  // possibly another user now
    raw = '/runs';
    history.replaceState(null, '', '#/runs');
  }
  const [path, query = ''] = (raw || '/runs').split('?');
  return {path: path.replace(/\/+$/, '') || '/runs', params: new URLSearchParams(query)};
}

/**
 * @param {{path: string, params: URLSearchParams}} where
 * @returns {{nav: string, view: View, args: object} | null}
 */
function route({path, params}) {
  let m;
  if (path === '/runs') return {nav: 'runs', view: runsView, args: {params}};
  if ((m = path.match(/^\/runs\/(\d+)$/))) return {nav: 'runs', view: runView, args: {id: Number(m[1]), params}};
  if (path === '/new') return {nav: 'new', view: newView, args: {params}};
  if (path === '/compare') return {nav: 'compare', view: compareView, args: {params}};
  if (path === '/sweeps') return {nav: 'sweeps', view: sweepsView, args: {params}};
  if (path === '/workers') return {nav: 'workers', view: workersView, args: {params}};
  if (path === '/sweeps/new') return {nav: 'sweeps', view: newView, args: {params, sweep: true}};
  if ((m = path.match(/^\/sweeps\/(\d+)$/))) return {nav: 'sweeps', view: sweepView, args: {id: Number(m[1]), params}};
  return null;
}

function clear() {
  if (current) { current.dispose(); current = null; }
  purgeAll(main);
  main.replaceChildren();
}

/** @param {string | null | undefined} name */
function setNav(name) {
  for (const a of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll('[data-nav]'))) a.classList.toggle('active', a.dataset.nav === name);
}

// ---- signed-in user (header) and the sign-in view
/** @param {Me} who */
function renderUser(who) {
  const teams = (who.teams || []).map((t) => t.name);
  fill(userBox,
    h('span', {class: 'user-name', id: 'user-name', text: who.user.name,
      title: teams.length ? `Teams: ${teams.join(', ')}` : null}),
    who.user.is_admin ? h('span', {class: 'badge note', text: 'admin'}) : null,
    h('button', {type: 'button', class: 'small', id: 'signout', onclick: signOut}, 'Sign out'));
}

function showSignIn(expired = false) {
  clear();
  setNav(null);
  userBox.replaceChildren();
  document.body.classList.add('signed-out');
  current = lifecycle();
  signinView.mount(main, {expired, onSignedIn: (who) => { renderUser(who); render(); }}, current);
}

function signOut() {
  setToken(null);
  showSignIn();
}

// A 401 to the stored token: forget it and ask for another.
onUnauthorized(() => { setToken(null); showSignIn(true); });

function loadUser() {
  const tok = token();
  me().then(renderUser).catch((err) => {
    if (err.status === 401 && tok === token()) { setToken(null); showSignIn(true); }
  });
}

function render() {
  clear();
  const where = parse();
  if (!token()) { showSignIn(); return; }
  document.body.classList.remove('signed-out');
  if (!userBox.childElementCount) loadUser();
  const r = route(where);
  setNav(r?.nav);
  if (!r) {
    main.append(h('div', {class: 'empty'}, h('p', {text: 'No such page.'}), h('a', {href: '#/runs', text: 'Go to the runs'})));
    return;
  }
  current = lifecycle();
  try {
    r.view.mount(main, r.args, current);
  } catch (err) {
    console.error(err);
    main.append(h('div', {class: 'banner error', text: `This view failed: ${err.message}`}));
  }
}

window.addEventListener('hashchange', render);
// Dark mode follows the OS: redraw with the new colours when it changes.
window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', render);

// Keyboard: "/" focuses the search box; Esc leaves a text field.
document.addEventListener('keydown', (ev) => {
  const t = ev.target;
  const typing = t instanceof HTMLElement && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName));
  if (ev.key === '/' && !typing && !ev.ctrlKey && !ev.metaKey && !ev.altKey) {
    const search = /** @type {HTMLInputElement | null} */ (document.querySelector('[data-search]'));
    if (search) { ev.preventDefault(); search.focus(); search.select(); }
  } else if (ev.key === 'Escape' && typing && t.matches('[data-search]')) {
    t.blur();
  }
});

render();
