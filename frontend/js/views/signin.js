// @ts-check
// Sign-in: paste an API token; it is checked with GET /me before the page the user wanted opens.
import {ApiError, me, setToken} from '../api.js';
import {h} from '../dom.js';
/** @import {Life} from '../dom.js' */
/** @import {Me} from '../types' */

/**
 * @param {HTMLElement} root
 * @param {{onSignedIn: (who: Me) => void, expired?: boolean}} args
 * @param {Life} life
 */
export function mount(root, {onSignedIn, expired}, life) {
  document.title = 'Sign in — GXNOR Lab';
  const input = h('input', {type: 'password', id: 'signin-token', name: 'token', autocomplete: 'current-password',
    spellcheck: 'false', required: true, 'aria-describedby': 'signin-help signin-error', placeholder: 'gx_…'});
  const error = h('div', {class: 'field-error', id: 'signin-error', role: 'alert', 'aria-live': 'polite'});
  const submit = h('button', {type: 'submit', class: 'primary', id: 'signin-submit'}, 'Sign in');
  const form = h('form', {class: 'panel signin', id: 'signin-form', autocomplete: 'on'},
    h('h1', null, 'Sign in'),
    expired ? h('p', {class: 'banner warn', text: 'The stored token was not accepted (revoked?). Sign in again.'}) : null,
    h('p', {class: 'muted', id: 'signin-help'}, 'Paste an API token. ', h('code', null, 'gxnor up'),
      ' prints one (and a sign-in link) at first start; ', h('code', null, 'gxnor token'), ' makes a new one.'),
    h('label', {for: 'signin-token'}, 'API token'),
    h('div', {class: 'signin-row'}, input, submit),
    error);

  input.addEventListener('input', () => { error.textContent = ''; input.removeAttribute('aria-invalid'); });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const value = input.value.trim();
    if (!value) return;
    error.textContent = '';
    submit.disabled = true;
    setToken(value);
    try {
      const who = await me();
      if (!life.alive) return;
      onSignedIn(who);
    } catch (err) {
      if (!life.alive) return;
      setToken(null);
      error.textContent = err instanceof ApiError && err.status === 401
        ? 'That token is not valid (revoked or mistyped).'
        : `Could not sign in: ${err.message}`;
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      input.select();
    } finally {
      submit.disabled = false;
    }
  });

  root.append(h('div', {class: 'signin-wrap'}, form));
  input.focus();
}
