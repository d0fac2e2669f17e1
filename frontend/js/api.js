// @ts-check
// Client of the public REST API (/api/v1).  Every call carries the stored bearer token; a sign-in link
// `#token=TOKEN` or the sign-in view stores it.  A 401 tells the app (onUnauthorized) to show the sign-in view.
/** @import {BulkOut, Catalog, CompareOut, Config, CostsOut, Estimate, LayersOut, Me, MetricsOut, Page, QueueOut, Run, RunQueueOut, Sweep, SweepCreated, SweepDetail, WorkersOut} from './types' */
/** @import {BatchesOut} from './types' */

const BASE = '/api/v1';
const TOKEN_KEY = 'gxnor.token';
/** @type {Promise<Me> | null} */
let mePromise = null;  // GET /me for the stored token

/** @returns {string | null} */
export function token() {
  try { return localStorage.getItem(TOKEN_KEY); } catch { return null; }
}

/** @param {string | null} value */
export function setToken(value) {
  try { value ? localStorage.setItem(TOKEN_KEY, value) : localStorage.removeItem(TOKEN_KEY); } catch { /* private mode */ }
  mePromise = null;
}

let unauthorized = () => {};
/**
 * fn(): called when the server answers 401 to the token in use (revoked, mistyped or missing).
 * @param {() => void} fn
 */
export function onUnauthorized(fn) { unauthorized = fn; }

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {any} body the answer's JSON (or its text)
   */
  constructor(status, body) {
    let message = `HTTP ${status}`;
    if (body && typeof body === 'object') {
      if (typeof body.message === 'string') message = body.message;
      else if (typeof body.detail === 'string') message = body.detail;
      else if (Array.isArray(body.detail) && body.detail[0]?.msg) message = body.detail[0].msg;
    } else if (typeof body === 'string' && body) {
      message = body.slice(0, 300);
    }
    super(message);
    this.status = status;
    this.body = body;
    /** @type {string | null} the config field a 422 is about ("config.weights.N"), when the server names one */
    this.field = body && typeof body === 'object' ? body.field ?? null : null;
  }
}

/**
 * URL query string from an object, skipping empty values.
 * @param {Record<string, unknown> | null | undefined} params
 */
export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === null || v === undefined || v === '') continue;
    q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/**
 * @typedef {object} CallOptions
 * @property {string} [method]
 * @property {unknown} [body] sent as JSON
 * @property {AbortSignal} [signal]
 * @property {boolean} [quiet401] a 401 throws without calling the onUnauthorized hook
 */

/**
 * One API call. A 401 calls the onUnauthorized hook first (unless quiet401), then throws like any error.
 * @param {string} path
 * @param {CallOptions} [options]
 * @returns {Promise<any>}
 */
export async function api(path, {method = 'GET', body, signal, quiet401 = false} = {}) {
  /** @type {Record<string, string>} */
  const headers = {Accept: 'application/json'};
  const tok = token();
  if (tok) headers.Authorization = `Bearer ${tok}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  else if (method !== 'GET') headers['X-Requested-With'] = 'gxnor-ui';  // not a cross-site "simple" request
  const res = await fetch(BASE + path, {method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body)});
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!res.ok) {
    // Only a 401 to the token still stored counts: a reply to a token since replaced is stale.
    if (res.status === 401 && !quiet401 && tok === token()) unauthorized();
    throw new ApiError(res.status, data);
  }
  return data;
}

/** @typedef {Record<string, string | number | boolean | null | undefined>} Params */

export const endpoints = {
  /** @type {(params: Params, signal?: AbortSignal) => Promise<Page<Run>>} */
  list: (params, signal) => api(`/runs${qs(params)}`, {signal}),
  /** @type {(id: number, signal?: AbortSignal) => Promise<Run>} */
  run: (id, signal) => api(`/runs/${id}`, {signal}),
  /** @type {(id: number, params: Params, signal?: AbortSignal) => Promise<MetricsOut>} */
  metrics: (id, params, signal) => api(`/runs/${id}/metrics${qs(params)}`, {signal}),
  /** @type {(id: number, params: Params, signal?: AbortSignal) => Promise<LayersOut>} */
  layers: (id, params, signal) => api(`/runs/${id}/layers${qs(params)}`, {signal}),
  /** @type {(id: number, params: Params, signal?: AbortSignal) => Promise<CostsOut>} */
  costs: (id, params, signal) => api(`/runs/${id}/costs${qs(params)}`, {signal}),
  /** @type {(id: number, params: Params, signal?: AbortSignal) => Promise<BatchesOut>} */
  batches: (id, params, signal) => api(`/runs/${id}/batches${qs(params)}`, {signal}),
  /** @type {(id: number) => Promise<Run>} */
  cancel: (id) => api(`/runs/${id}/cancel`, {method: 'POST'}),
  /** @type {(id: number) => Promise<Run>} a new queued run with this one's config */
  rerun: (id) => api(`/runs/${id}/rerun`, {method: 'POST'}),
  /** @type {(id: number) => Promise<Run>} this failed or cancelled run, queued again from its checkpoint */
  resume: (id) => api(`/runs/${id}/resume`, {method: 'POST'}),
  /** @type {(id: number) => Promise<null>} */
  remove: (id) => api(`/runs/${id}`, {method: 'DELETE'}),
  /** @type {(config: Config, team?: string) => Promise<Run>} */
  create: (config, team) => api('/runs', {method: 'POST', body: team ? {config, team} : {config}}),
  /** @type {(params: Params, signal?: AbortSignal) => Promise<CompareOut>} */
  compare: (params, signal) => api(`/compare${qs(params)}`, {signal}),
  /** @type {(signal?: AbortSignal) => Promise<Catalog>} */
  catalog: (signal) => api('/catalog', {signal}),
  /** @type {(params: Params, signal?: AbortSignal) => Promise<Page<Sweep>>} */
  sweeps: (params, signal) => api(`/sweeps${qs(params)}`, {signal}),
  /** @type {(id: number, signal?: AbortSignal) => Promise<SweepDetail>} */
  sweep: (id, signal) => api(`/sweeps/${id}`, {signal}),
  /** @type {(body: object) => Promise<SweepCreated>} */
  createSweep: (body) => api('/sweeps', {method: 'POST', body}),
  /** @type {(body: object, signal?: AbortSignal) => Promise<Estimate>} */
  estimate: (body, signal) => api('/estimate', {method: 'POST', body, signal}),
  /** @type {(signal?: AbortSignal) => Promise<WorkersOut>} */
  workers: (signal) => api('/workers', {signal}),
  /** @type {(signal?: AbortSignal) => Promise<QueueOut>} */
  queue: (signal) => api('/queue', {signal}),
  /** @type {(id: number, signal?: AbortSignal) => Promise<RunQueueOut>} */
  runQueue: (id, signal) => api(`/runs/${id}/queue`, {signal}),
  /** @type {(id: number) => Promise<Sweep>} */
  cancelSweep: (id) => api(`/sweeps/${id}/cancel`, {method: 'POST'}),
  // EventSource cannot send headers: the event stream takes the token as a query parameter.
  /** @type {(id: number, after: number) => string} */
  eventsUrl: (id, after) => `${BASE}/runs/${id}/events${qs({after, token: token()})}`,
  // A download is a short-lived link made for it ({url, expires_at}): no token in the address or history.
  /** @type {(id: number) => Promise<{url: string, expires_at: string}>} */
  checkpointLink: (id) => api(`/runs/${id}/checkpoint/link`, {method: 'POST'}),
  // One action on many runs, each answered on its own (docs/API.md, "Tags, notes, rename, archive").
  /** @type {(ids: number[], action: string, tags?: string[]) => Promise<BulkOut>} */
  bulk: (ids, action, tags) => api('/runs/bulk', {method: 'POST', body: tags ? {ids, action, tags} : {ids, action}}),
};

/**
 * The signed-in user and their teams ({user, teams}); fetched once per token.  Its 401 is the caller's to handle.
 * @returns {Promise<Me>}
 */
export function me() {
  mePromise = mePromise || api('/me', {quiet401: true}).catch((e) => { mePromise = null; throw e; });
  return mePromise;
}

/** @type {Promise<Catalog> | null} */
let catalogPromise = null;
/**
 * The catalog rarely changes: fetch it once per page load.
 * @returns {Promise<Catalog>}
 */
export function catalog() {
  catalogPromise = catalogPromise || api('/catalog').catch((e) => { catalogPromise = null; throw e; });
  return catalogPromise;
}
