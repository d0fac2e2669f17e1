// @ts-check
// Compare's run picker: the runs compared, each removable, and a search box (GET /runs?q=: name, project, notes…)
// whose answers — with their status and project — add a run.  A combobox (WAI-ARIA): ↓/↑ move through the
// answers, Enter adds, Escape closes; an empty box lists the latest runs.
import {endpoints} from '../../api.js';
import {fill, h} from '../../dom.js';
/** @import {Life} from '../../dom.js' */
/** @import {Run} from '../../types' */

const SEARCH_MS = 200;
const ANSWERS = 20;

/**
 * @param {Life} life
 * @param {{max: number, onChange: (ids: number[]) => void}} options onChange: the runs to compare now
 */
export function runPicker(life, {max, onChange}) {
  /** @type {{ids: number[], names: Map<number, string>, answers: Run[], active: number, asked: number}} */
  const st = {ids: [], names: new Map(), answers: [], active: -1, asked: 0};
  const input = h('input', {type: 'search', id: 'compare-search', role: 'combobox', autocomplete: 'off', 'aria-autocomplete': 'list',
    'aria-expanded': 'false', 'aria-controls': 'compare-search-list', placeholder: 'Add a run: search by name…', style: {width: '18rem'}});
  const list = h('ul', {id: 'compare-search-list', role: 'listbox', class: 'picker-list hidden', 'aria-label': 'Runs found'});
  const chosen = h('ul', {id: 'compare-chosen', class: 'picker-chosen', 'aria-label': 'Runs compared'});
  const el = h('div', {class: 'panel picker', id: 'compare-picker', style: {padding: '.6rem .8rem', marginBottom: '1rem'}},
    h('label', {class: 'inline', for: 'compare-search'}, 'Runs'), chosen,
    h('div', {class: 'picker-search', style: {position: 'relative'}}, input, list));

  function renderChosen() {
    fill(chosen, st.ids.map((id) => h('li', {'data-run': id, class: 'chip'},
      h('a', {href: `#/runs/${id}`, text: st.names.has(id) ? `#${id} ${st.names.get(id)}` : `#${id}`}),
      h('button', {type: 'button', class: 'small', 'data-remove': id, 'aria-label': `Remove run #${id} from the comparison`,
        onclick: () => onChange(st.ids.filter((x) => x !== id))}, '×'))));
    input.disabled = st.ids.length >= max;
    input.placeholder = input.disabled ? `At most ${max} runs` : 'Add a run: search by name…';
  }

  /** @param {boolean} open */
  function setOpen(open) {
    list.classList.toggle('hidden', !open);
    input.setAttribute('aria-expanded', String(open));
    if (!open) { st.active = -1; input.removeAttribute('aria-activedescendant'); }
  }

  function renderAnswers() {
    const shown = st.answers.filter((r) => !st.ids.includes(r.id));
    st.active = Math.min(st.active, shown.length - 1);
    fill(list, shown.length ? shown.map((r, i) => h('li', {role: 'option', id: `compare-option-${r.id}`, 'data-run': r.id,
      'aria-selected': String(i === st.active), class: i === st.active ? 'active' : null,
      onmousedown: (/** @type {MouseEvent} */ ev) => { ev.preventDefault(); add(r); }},
    h('span', {class: 'mono', text: `#${r.id} `}), h('span', {class: 'name', text: r.name}),
    h('span', {class: 'muted small', text: ` · ${r.project} · `}), h('span', {class: `badge ${r.status}`, text: r.status})))
      : h('li', {class: 'muted small', role: 'presentation', text: 'No run found.'}));
    const active = shown[st.active];
    if (active) input.setAttribute('aria-activedescendant', `compare-option-${active.id}`);
    else input.removeAttribute('aria-activedescendant');
    return shown;
  }

  /** @param {Run} r */
  function add(r) {
    st.names.set(r.id, r.name);
    input.value = '';
    setOpen(false);
    if (!st.ids.includes(r.id) && st.ids.length < max) onChange([...st.ids, r.id]);
  }

  async function search() {
    const asked = ++st.asked;
    try {
      const page = await endpoints.list({q: input.value.trim(), limit: ANSWERS, sort: 'created_at', order: 'desc'}, life.signal);
      if (!life.alive || asked !== st.asked) return;
      st.answers = page.items;
      st.active = -1;
      renderAnswers();
      setOpen(document.activeElement === input);
    } catch (err) {
      if (!life.alive || err.name === 'AbortError' || asked !== st.asked) return;
      fill(list, h('li', {class: 'muted small', role: 'presentation', text: `Could not search: ${err.message}`}));
      setOpen(true);
    }
  }

  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const later = () => { clearTimeout(timer); timer = setTimeout(search, SEARCH_MS); };
  life.onCleanup(() => clearTimeout(timer));
  input.addEventListener('input', later);
  input.addEventListener('focus', () => search());
  input.addEventListener('blur', () => setOpen(false));
  input.addEventListener('keydown', (ev) => {
    const shown = st.answers.filter((r) => !st.ids.includes(r.id));
    if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      ev.preventDefault();
      if (list.classList.contains('hidden')) { setOpen(true); }
      const step = ev.key === 'ArrowDown' ? 1 : -1;
      st.active = shown.length ? (st.active + step + shown.length) % shown.length : -1;
      renderAnswers();
      list.querySelector('.active')?.scrollIntoView({block: 'nearest'});
    } else if (ev.key === 'Enter') {
      ev.preventDefault();
      const r = shown[st.active] ?? (shown.length === 1 ? shown[0] : undefined);
      if (r) add(r);
    } else if (ev.key === 'Escape') {
      setOpen(false);
    }
  });

  return {
    el,
    /**
     * The runs compared now, and the names known of them (after a load).
     * @param {number[]} ids
     * @param {{id: number, name: string}[]} runs
     */
    update(ids, runs) {
      st.ids = ids;
      for (const r of runs) st.names.set(r.id, r.name);
      renderChosen();
    },
  };
}
