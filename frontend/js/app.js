// Hash router: #/runs, #/new, #/new?clone=7, #/runs/7, #/compare?ids=3,7&metric=val_error
import {setToken} from './api.js';
import {h, lifecycle} from './dom.js';
import {purgeAll} from './charts.js';
import * as runsView from './views/runs.js';
import * as newView from './views/new.js';
import * as runView from './views/run.js';
import * as compareView from './views/compare.js';

const main = document.getElementById('main');
let current = null;

function parse() {
  let raw = location.hash.replace(/^#/, '');
  if (raw.startsWith('token=')) {  // sign-in link: keep the token, drop it from the address bar
    setToken(decodeURIComponent(raw.slice(6)));
    raw = '/runs';
    history.replaceState(null, '', '#/runs');
  }
  const [path, query = ''] = (raw || '/runs').split('?');
  return {path: path.replace(/\/+$/, '') || '/runs', params: new URLSearchParams(query)};
}

function route({path, params}) {
  let m;
  if (path === '/runs') return {nav: 'runs', view: runsView, args: {params}};
  if ((m = path.match(/^\/runs\/(\d+)$/))) return {nav: 'runs', view: runView, args: {id: Number(m[1]), params}};
  if (path === '/new') return {nav: 'new', view: newView, args: {params}};
  if (path === '/compare') return {nav: 'compare', view: compareView, args: {params}};
  return null;
}

function render() {
  if (current) { current.dispose(); current = null; }
  purgeAll(main);
  main.replaceChildren();
  const where = parse();
  const r = route(where);
  for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('active', r && a.dataset.nav === r.nav);
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
    const search = document.querySelector('[data-search]');
    if (search) { ev.preventDefault(); search.focus(); search.select(); }
  } else if (ev.key === 'Escape' && typing && t.matches('[data-search]')) {
    t.blur();
  }
});

render();
