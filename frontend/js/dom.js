// DOM helpers. Everything a user can type (run and project names, config values, error
// messages) reaches the page through textContent / text nodes only — never innerHTML.

const PROPS = new Set(['value', 'checked', 'disabled', 'selected', 'indeterminate', 'noValidate', 'multiple']);

/** h('div', {class: 'x', onclick: fn}, 'text', child, [more]) → element. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (PROPS.has(k)) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replace el's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** Life cycle of one mounted view: timers, listeners, fetch aborts and cleanups end together. */
export function lifecycle() {
  const cleanups = [];
  const controller = new AbortController();
  const life = {
    alive: true,
    signal: controller.signal,
    onCleanup(fn) { cleanups.push(fn); },
    timeout(fn, ms) { const t = setTimeout(() => life.alive && fn(), ms); cleanups.push(() => clearTimeout(t)); return t; },
    listen(target, type, fn, opts) { target.addEventListener(type, fn, opts); cleanups.push(() => target.removeEventListener(type, fn, opts)); },
    dispose() {
      life.alive = false;
      controller.abort();
      while (cleanups.length) { try { cleanups.pop()(); } catch (e) { console.warn(e); } }
    },
  };
  return life;
}

let toastBox;
/** A short message in the corner (text only). */
export function toast(message, kind = 'info', ms = 5000) {
  toastBox = toastBox || document.getElementById('toast');
  const msg = h('div', {class: `msg ${kind}`, text: message});
  toastBox.append(msg);
  setTimeout(() => msg.remove(), ms);
}

/** A button that asks for a second click before doing something destructive (no modal dialogs). */
export function confirmButton(label, confirmLabel, action, attrs = {}) {
  let armed = false;
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
