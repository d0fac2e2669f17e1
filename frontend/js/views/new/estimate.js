// @ts-check
// The sweep's cost before launch (POST /estimate with {sweep}): runs, epochs and training time, per architecture ×
// dataset × device with where each rate comes from ("learned from N runs" here, or the "default table"), and the
// team's queue beside it — a warning when the sweep would not fit the team's budget.  Asked again, debounced, as
// the spec changes; nothing is queued.
import {endpoints} from '../../api.js';
import {fill, h} from '../../dom.js';
import {fmtDuration} from '../../util.js';
/** @import {Life} from '../../dom.js' */
/** @import {Estimate} from '../../types' */

const DEBOUNCE_MS = 400;

/** @param {number} n @param {string} one */
const plural = (n, one) => `${n} ${one}${n === 1 ? '' : 's'}`;

/**
 * What is over the team's budget (empty when it fits).
 * @param {NonNullable<Estimate['team']>} t
 * @param {Estimate} e
 */
function overBudget(t, e) {
  const out = [];
  if (t.queued_runs + e.runs > t.max_queued_runs) {
    out.push(`${plural(t.queued_runs, 'run')} already queued + ${e.runs} > the queue's ${t.max_queued_runs}`);
  }
  if (t.max_queued_seconds !== null && t.queued_seconds + e.total_seconds > t.max_queued_seconds) {
    out.push(`${fmtDuration(t.queued_seconds)} of queued work + ${fmtDuration(e.total_seconds)} > the budget of ${fmtDuration(t.max_queued_seconds)}`);
  }
  return out;
}

/**
 * @param {Life} life
 * @returns {{el: HTMLElement, update: (body: Record<string, any> | null) => void}} update: the POST /sweeps body
 *   (null: no sweep, or a list not readable yet)
 */
export function sweepEstimate(life) {
  const el = h('div', {class: 'sweep-estimate hidden', id: 'sweep-estimate', 'aria-live': 'polite'});
  let asked = 0;
  let sent = '';
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  life.onCleanup(() => clearTimeout(timer));

  /** @param {Record<string, any>} body */
  async function ask(body) {
    const n = ++asked;
    const {team, ...sweep} = body;  // POST /estimate takes the team beside the spec
    try {
      const e = await endpoints.estimate(team ? {sweep, team} : {sweep}, life.signal);
      if (life.alive && n === asked) render(e);
    } catch (err) {
      if (!life.alive || err.name === 'AbortError' || n !== asked) return;
      fill(el, h('p', {class: 'muted small', id: 'sweep-estimate-error', text: `No estimate: ${err.message}`}));
    }
  }

  /** @param {Estimate} e */
  function render(e) {
    const t = e.team;
    const over = t && !t.fits ? overBudget(t, e) : [];
    fill(el,
      h('p', {class: 'small', id: 'sweep-estimate-total'}, 'Estimated cost: ', h('b', {text: `≈ ${fmtDuration(e.total_seconds)}`}),
        ` of training — ${plural(e.runs, 'run')}, ${plural(e.epochs, 'epoch')} in all (one after another).`),
      h('ul', {class: 'small muted', id: 'sweep-estimate-kinds'}, e.kinds.map((k) => h('li', {'data-source': k.source,
        text: `${k.arch} on ${k.dataset}, device ${k.device}: ${plural(k.runs, 'run')}, ${fmtDuration(k.seconds_per_epoch)} per epoch `
          + `(${k.source}) → ${fmtDuration(k.total_seconds)}`}))),
      t ? h('p', {class: 'small muted', id: 'sweep-estimate-team', text: `Team ${t.name} now: ${plural(t.queued_runs, 'run')} queued `
        + `(≈ ${fmtDuration(t.queued_seconds)}), ${t.running_runs} running; limits ${t.max_queued_runs} queued runs`
        + `${t.max_queued_seconds !== null ? `, ${fmtDuration(t.max_queued_seconds)} of queued work` : ''}.`}) : null,
      t && !t.fits ? h('div', {class: 'banner warn', role: 'alert', id: 'sweep-estimate-warning',
        text: `This sweep would exceed team ${t.name}'s budget${over.length ? ` (${over.join('; ')})` : ''}: `
          + 'the server will refuse it until queued runs finish.'}) : null);
  }

  return {
    el,
    update(body) {
      el.classList.toggle('hidden', body === null);
      if (body === null) { clearTimeout(timer); asked += 1; sent = ''; return; }
      const key = JSON.stringify(body);
      if (key === sent) return;
      sent = key;
      if (!el.childElementCount) fill(el, h('p', {class: 'muted small'}, 'Estimating…'));
      clearTimeout(timer);
      timer = setTimeout(() => ask(body), DEBOUNCE_MS);
    },
  };
}
