// @ts-check
// The cost model's figures as the run page's cost panel and compare's cost table show them (GET /runs/{id}/costs,
// compare's `costs=true`; docs/METHOD.md §6).  What each scheme assumes and what each count is come from the
// server (/catalog → costs); this file only says which counts a table shows, their column heads and formats.
import {catalog} from './api.js';
import {h} from './dom.js';
import {fmtCompact, fmtInt, fmtNum, fmtPct, isNum} from './util.js';
/** @import {CostCatalog, CostCounts, CostTotals, EnergyTable} from './types' */

/** @returns {Promise<CostCatalog>} */
export function costCatalog() {
  return catalog().then((c) => c.costs);
}

/**
 * Picojoules in the unit that reads best: "840 pJ", "12.3 nJ", "1.46 µJ".
 * @param {unknown} pj
 */
export function fmtEnergy(pj) {
  if (!isNum(pj)) return '—';
  for (const [d, u] of /** @type {[number, string][]} */ ([[1e12, 'J'], [1e9, 'mJ'], [1e6, 'µJ'], [1e3, 'nJ']])) {
    if (Math.abs(pj) >= d) return `${fmtNum(pj / d, 3)} ${u}`;
  }
  return `${fmtNum(pj, 3)} pJ`;
}

/** @param {unknown} v */
function fmtBytes(v) {
  if (!isNum(v)) return '—';
  if (Math.abs(v) >= 2 ** 20) return `${fmtNum(v / 2 ** 20, 3)} MiB`;
  if (Math.abs(v) >= 2 ** 10) return `${fmtNum(v / 2 ** 10, 3)} KiB`;
  return `${fmtNum(v, 3)} B`;
}

/**
 * A count column: its head, the count it shows (a key of the totals) and how it is written.
 * @typedef {object} CountColumn
 * @property {keyof CostTotals} key
 * @property {string} head
 * @property {(v: unknown) => string} fmt
 */

/** The counts a table shows, in order (per sample). */
/** @type {CountColumn[]} */
export const COUNT_COLUMNS = [
  {key: 'executed', head: 'Executed MACs', fmt: fmtCompact},
  {key: 'resting', head: 'Resting MACs', fmt: fmtCompact},
  {key: 'xnor', head: 'XNOR', fmt: fmtCompact},
  {key: 'int_add', head: 'Int add', fmt: fmtCompact},
  {key: 'float_mult', head: 'Float mult', fmt: fmtCompact},
  {key: 'float_add', head: 'Float add', fmt: fmtCompact},
  {key: 'weight_bytes', head: 'Weight bytes', fmt: fmtBytes},
  {key: 'activation_bytes', head: 'Input bytes', fmt: fmtBytes},
  {key: 'energy_pj', head: 'Energy', fmt: fmtEnergy},
];

/**
 * The head of a count column, with what the count is (the catalog's words) as its tooltip.
 * @param {CostCatalog} cc
 * @param {CountColumn} col
 */
export function countHead(cc, col) {
  return h('th', {class: 'num', title: cc.counts[col.key] || null, 'data-count': col.key}, col.head);
}

/**
 * A count's exact value, for a tooltip: "1,234,567", or "1,234.57 pJ" for energy.
 * @param {unknown} v
 * @param {string} key the count's name
 */
export function exactCount(v, key) {
  return isNum(v) ? (key.endsWith('_pj') ? `${v.toLocaleString('en-US', {maximumFractionDigits: 2})} pJ` : fmtInt(v)) : null;
}

/**
 * A count cell; its exact value in the tooltip.
 * @param {CostCounts | CostTotals} counts
 * @param {CountColumn} col
 */
export function countCell(counts, col) {
  const v = /** @type {Partial<CostTotals>} */ (counts)[col.key];
  return h('td', {class: 'num', 'data-count': col.key, text: col.fmt(v), title: exactCount(v, col.key)});
}

/**
 * "12.3%" of the dense MACs (the resting probability of the scheme's gates).
 * @param {CostTotals} t
 */
export function restingShare(t) {
  return fmtPct(t.resting_fraction, 1);
}

/**
 * "0.042×" the full-precision energy on the same network.
 * @param {CostTotals} t
 */
export function vsFullPrecision(t) {
  return isNum(t.energy_vs_full_precision) ? `${fmtNum(t.energy_vs_full_precision, 3)}×` : '—';
}

/**
 * A scheme's label with its assumption beneath it (a table's first cell).
 * @param {{label: string, assumption: string}} s
 */
export function schemeCell(s) {
  return h('th', {scope: 'row', class: 'scheme'}, h('div', {class: 'scheme-label', text: s.label}),
    h('div', {class: 'assumption', text: s.assumption}));
}

/** What the energy table's entries price (its other fields are written as they are named). */
const PRICES = /** @type {Record<string, string>} */ ({
  fp32_mult_pj: '32-bit float multiply', fp32_add_pj: '32-bit float add', int8_add_pj: '8-bit integer add',
  xnor_pj: 'XNOR gate', memory_read_64bit_pj: '64-bit on-chip SRAM read',
});

/**
 * The energy table's source, process node and prices, in one paragraph.
 * @param {EnergyTable} table
 */
export function energySource(table) {
  const prices = Object.entries(table).filter(([k, v]) => k.endsWith('_pj') && isNum(v))
    .map(([k, v]) => `${PRICES[k] || k} ${fmtNum(v, 4)} pJ`);
  return h('p', {class: 'muted small energy-source'},
    'Energy: per-operation prices from ', h('cite', {text: table.source}), ', ',
    h('span', {class: 'node', text: table.node}), ` (${prices.join(', ')}). `,
    'An estimate of the weight layers\' arithmetic and on-chip reads, for comparing schemes on the same network — ',
    'no DRAM, reuse, BatchNorm or pooling (docs/METHOD.md §6).');
}
