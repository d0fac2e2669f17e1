// @ts-check
// The runs CSV: every run matching the page's filters, in the page's order, with exactly the columns shown (and the
// id and name, always first); headers are the columns' keys (as in `cols=`), values raw.
import {endpoints} from '../../api.js';
import {download, toCSV} from '../../util.js';
import {sortRuns} from './columns.js';
/** @import {Params} from '../../api.js' */
/** @import {Column} from './columns.js' */
/** @import {Run} from '../../types' */

const MAX_ROWS = 20000;
const PAGE = 500;

/**
 * The CSV's columns: the id and the name (first, as in the table when shown), then the other columns shown.
 * @param {Column[]} shown
 * @param {Record<string, Column>} byKey
 * @returns {Column[]}
 */
export function csvColumns(shown, byKey) {
  return [byKey.id, byKey.name, ...shown.filter((c) => c.key !== 'id' && c.key !== 'name')];
}

/**
 * @param {object} args
 * @param {Column[]} args.columns the CSV's columns (csvColumns)
 * @param {Params} args.params the list's filters and server sort
 * @param {{column: Column, order: 'asc' | 'desc'} | null} args.pageSort a sort the API cannot do, applied to all rows
 * @param {AbortSignal} args.signal
 */
export async function exportCsv({columns, params, pageSort, signal}) {
  /** @type {Run[]} */
  let all = [];
  for (let offset = 0; offset < MAX_ROWS; offset += PAGE) {
    const page = await endpoints.list({...params, limit: PAGE, offset}, signal);
    all.push(...page.items);
    if (all.length >= page.total || !page.items.length) break;
  }
  if (pageSort) all = sortRuns(all, pageSort.column, pageSort.order);
  download('gxnor-runs.csv', toCSV(columns.map((c) => c.key), all.map((r) => columns.map((c) => c.value(r)))));
}
