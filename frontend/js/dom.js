// @ts-check
// DOM helpers, a view's lifecycle and its polling. Everything a user can type (run and project names, config values,
// error messages) reaches the page through textContent / text nodes only — never innerHTML.

const PROPS = new Set(['value', 'checked', 'disabled', 'selected', 'indeterminate', 'noValidate', 'multiple']);

/** A child of h()/append(): a node, text (numbers are written out), nothing (null, undefined, false), or a list. */
/** @typedef {Node | string | number | boolean | null | undefined | Child[]} Child */

/**
 * h('div', {class: 'x', onclick: fn}, 'text', child, [more]) → element.  `text` sets textContent, `dataset` and
 * an object `style` are assigned, `on…` functions become listeners, a few properties (value, checked, disabled…)
 * are set as properties; any other attribute is set as text (true → present, null/undefined/false → left out).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, any> | null} [attrs]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  /** @type {Record<string, any>} */
  const props = el;
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (PROPS.has(k)) props[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

/**
 * @template {Element} E
 * @param {E} el
 * @param {Child[]} children
 * @returns {E}
 */
export function append(el, children) {
  for (const c of /** @type {any[]} */ (children).flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/**
 * Replace el's children.
 * @template {Element} E
 * @param {E} el
 * @param {...Child} children
 * @returns {E}
 */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/**
 * The life of one mounted view (app.js makes one per page and disposes it when the page changes): its timers,
 * listeners, fetches (`signal`) and cleanups end together.
 * @typedef {object} Life
 * @property {boolean} alive false once the view is gone: async code checks it before touching the page
 * @property {AbortSignal} signal aborts the view's fetches when it goes
 * @property {(fn: () => void) => void} onCleanup
 * @property {(fn: () => void, ms: number) => ReturnType<typeof setTimeout>} timeout
 * @property {(target: EventTarget, type: string, fn: (ev: any) => void, opts?: boolean | AddEventListenerOptions) => void} listen
 * @property {() => void} dispose
 */

/** @returns {Life} */
export function lifecycle() {
  /** @type {(() => void)[]} */
  const cleanups = [];
  const controller = new AbortController();
  /** @type {Life} */
  const life = {
    alive: true,
    signal: controller.signal,
    onCleanup(fn) { cleanups.push(fn); },
    timeout(fn, ms) { const t = setTimeout(() => life.alive && fn(), ms); cleanups.push(() => clearTimeout(t)); return t; },
    listen(target, type, fn, opts) { target.addEventListener(type, fn, opts); cleanups.push(() => target.removeEventListener(type, fn, opts)); },
    dispose() {
      life.alive = false;
      controller.abort();
      while (cleanups.length) { try { cleanups.pop()?.(); } catch (e) { console.warn(e); } }
    },
  };
  return life;
}

/**
 * @typedef {object} Poller
 * @property {() => void} now run the task now: a pending wait is cancelled and a run still in flight is superseded
 *   (its `stale()` turns true, so it drops its result)
 * @property {() => void} stop no more runs until now()
 */

/**
 * @typedef {object} PollOptions
 * @property {number} [retryMs] the wait after a failed run (default 2 s), doubled after each further failure in a row
 * @property {number} [maxRetryMs] the longest wait after failures (default 60 s)
 * @property {(err: any, retryMs: number) => void} [onError] a failed run (not an abort): tell the user
 */

/**
 * The one way a view polls the API.  `task({stale})` loads and renders, then resolves to the milliseconds to wait
 * before its next run, or null to stop (a finished sweep); it checks `stale()` after each await and, when true,
 * renders nothing (a newer run or the view's end superseded it).  A run that throws is retried after a back-off.
 * While the tab is hidden a due run waits until the tab is visible again; when the view goes, polling stops.
 * Call `now()` to start, and again whenever the user changes what is shown.
 * @param {Life} life
 * @param {(run: {stale: () => boolean}) => Promise<number | null>} task
 * @param {PollOptions} [options]
 * @returns {Poller}
 */
export function poll(life, task, {retryMs = 2000, maxRetryMs = 60000, onError} = {}) {
  /** @type {ReturnType<typeof setTimeout> | null} */
  let timer = null;
  let generation = 0;
  let failures = 0;
  let dueWhileHidden = false;
  const cancelWait = () => { if (timer !== null) clearTimeout(timer); timer = null; };
  /** @param {number} ms */
  const wait = (ms) => {
    cancelWait();
    timer = setTimeout(() => {
      timer = null;
      if (!life.alive) return;
      if (document.hidden) { dueWhileHidden = true; return; }  // paused while the tab is hidden
      run();
    }, ms);
  };
  async function run() {
    cancelWait();
    dueWhileHidden = false;
    const mine = ++generation;
    const stale = () => !life.alive || mine !== generation;
    /** @type {number | null} */
    let next;
    try {
      next = await task({stale});
      if (stale()) return;
      failures = 0;
    } catch (err) {
      if (stale() || /** @type {any} */ (err)?.name === 'AbortError') return;
      next = Math.min(maxRetryMs, retryMs * 2 ** failures);
      failures += 1;
      if (onError) onError(err, next); else console.warn(err);
    }
    if (next !== null) wait(next);
  }
  const stop = () => { generation += 1; cancelWait(); dueWhileHidden = false; };
  life.onCleanup(stop);
  life.listen(document, 'visibilitychange', () => { if (!document.hidden && dueWhileHidden && life.alive) run(); });
  return {now: () => { if (life.alive) run(); }, stop};
}

/** @type {HTMLElement | null} */
let toastBox = null;
/**
 * A short message in the corner (text only).
 * @param {string} message
 * @param {'info' | 'error'} [kind]
 * @param {number} [ms]
 */
export function toast(message, kind = 'info', ms = 5000) {
  toastBox = toastBox || document.getElementById('toast');
  const msg = h('div', {class: `msg ${kind}`, text: message});
  toastBox?.append(msg);
  setTimeout(() => msg.remove(), ms);
}

/**
 * A button that asks for a second click before doing something destructive (no modal dialogs).
 * @param {string} label
 * @param {string} confirmLabel
 * @param {() => Promise<void> | void} action
 * @param {{class?: string, title?: string}} [attrs]
 * @returns {HTMLButtonElement}
 */
export function confirmButton(label, confirmLabel, action, attrs = {}) {
  let armed = false;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const btn = h('button', {type: 'button', class: `danger ${attrs.class || ''}`, title: attrs.title}, label);
  btn.addEventListener('click', async (ev) => {
    ev.stopPropagation();
    if (!armed) {
      armed = true;
      btn.classList.add('armed');
      btn.textContent = confirmLabel;
      timer = setTimeout(() => { armed = false; btn.classList.remove('armed'); btn.textContent = label; }, 4000);
      return;
    }
    clearTimeout(timer);
    btn.disabled = true;
    try { await action(); } finally { btn.disabled = false; armed = false; btn.classList.remove('armed'); btn.textContent = label; }
  });
  btn.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && armed) { clearTimeout(timer); armed = false; btn.classList.remove('armed'); btn.textContent = label; }
  });
  return btn;
}
