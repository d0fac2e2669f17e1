// @ts-check
// What the new-run form knows about config fields beyond the JSON schema of GET /catalog: labels, help, which
// fields stay command-line only or cannot be varied; reading a schema node; bounds text; parsing a list of values.
/** @import {ConfigSchema, DatasetInfo, SchemaProp} from '../../types' */

/** The config's sections, in form order, with their legends. */
export const SECTIONS = [
  ['dataset', 'Dataset'], ['model', 'Model'], ['weights', 'Weights'], ['activations', 'Activations'],
  ['dst', 'DST — discrete state transition'], ['train', 'Training'],
];

/** @type {Record<string, string>} Help for fields whose schema has no description. */
export const HELP = {
  name: 'Shown in the runs table and in charts.',
  project: 'Groups runs; the runs table filters by it.',
  'train.epochs': 'Passes over the training set.',
  'train.batch_size': 'Samples per update step.',
  'train.loss': 'squared_hinge as in the paper, or cross_entropy.',
  'train.seed': 'Same seed and config give the same run.',
  'train.device': 'auto: the worker’s GPU when it has one, else CPU.',
};
/** @type {Record<string, string>} Readable labels (the schema's titles are derived from the field names). */
export const LABELS = {
  name: 'Name', project: 'Project',
  'dataset.name': 'Dataset', 'dataset.root': 'Root directory', 'dataset.download': 'Download files',
  'dataset.val_fraction': 'Validation fraction', 'dataset.limit': 'Sample limit',
  'model.arch': 'Architecture', 'model.hidden': 'Hidden widths', 'model.width': 'Width multiplier',
  'weights.discrete': 'Discrete weights', 'weights.N': 'N (2^N+1 states)', 'weights.H': 'Range H',
  'weights.fc_init': 'FC init range (× H)',
  'activations.discrete': 'Discrete activations', 'activations.N': 'N (levels)', 'activations.r': 'Sparsity window r',
  'activations.a': 'Derivative window a', 'activations.window': 'Window shape', 'activations.overlap': 'Window overlap',
  'dst.optimizer': 'Base optimizer', 'dst.m': 'Nonlinearity m', 'dst.restart_patience': 'Restart patience',
  'train.epochs': 'Epochs', 'train.batch_size': 'Batch size', 'train.lr': 'Learning rate', 'train.lr_final': 'Final learning rate',
  'train.schedule': 'Schedule', 'train.milestones': 'Milestones', 'train.milestone_factor': 'Milestone factor',
  'train.zero_lr_first_epoch': 'Learning rate 0 in the first epoch', 'train.lr_float': 'Float parameters’ learning rate',
  'train.loss': 'Loss', 'train.seed': 'Seed', 'train.device': 'Device', 'train.integer_forward': 'Integer forward (CPU)',
};
export const CLI_ONLY = new Set(['dataset.root', 'dataset.download']);
// Fields a sweep cannot vary from the form (numbers and choices elsewhere can); the seed becomes the seeds list.
export const NOT_VARIED = new Set(['train.device', 'train.seed', ...CLI_ONLY]);
export const MAX_SEEDS = 100;

/** @typedef {'enum' | 'bool' | 'int' | 'num' | 'list' | 'str'} Kind */
/** A schema node read for a form field: its kind, whether it may be empty (null), the node without `anyOf`. */
/** @typedef {{kind: Kind, nullable: boolean, p: SchemaProp}} Described */
/** A list of values read from text: the values, or why it cannot be read. */
/** @typedef {{values: any[], error?: undefined} | {error: string, values?: undefined}} Parsed */

/**
 * A section's schema node ($ref into $defs).
 * @param {ConfigSchema} schema
 * @param {SchemaProp} prop
 * @returns {SchemaProp}
 */
export function resolve(schema, prop) {
  return prop.$ref ? schema.$defs[prop.$ref.split('/').pop() ?? ''] : prop;
}

/**
 * @param {SchemaProp} prop
 * @returns {Described}
 */
export function describe(prop) {
  let nullable = false;
  let p = prop;
  if (prop.anyOf) {
    const nonNull = prop.anyOf.filter((x) => x.type !== 'null');
    nullable = nonNull.length < prop.anyOf.length;
    p = {...prop, ...nonNull[0]};
    delete p.anyOf;
  }
  const kind = p.enum ? 'enum' : p.type === 'boolean' ? 'bool' : p.type === 'integer' ? 'int'
    : p.type === 'number' ? 'num' : p.type === 'array' ? 'list' : 'str';
  return {kind, nullable, p};
}

/**
 * The bounds a field shows next to its input ("1 – 1000", "≥ 0, empty = none").
 * @param {Described} d
 * @param {number} [maxOverride] a lower maximum than the schema's (the server's epoch limit)
 */
export function boundsText({kind, nullable, p}, maxOverride) {
  const parts = [];
  if (kind === 'int' || kind === 'num') {
    const hi = maxOverride ?? p.maximum;
    if (p.minimum !== undefined && hi !== undefined) parts.push(`${p.minimum} – ${hi}`);
    else {
      if (p.minimum !== undefined) parts.push(`≥ ${p.minimum}`);
      if (p.exclusiveMinimum !== undefined) parts.push(`> ${p.exclusiveMinimum}`);
      if (hi !== undefined) parts.push(`≤ ${hi}`);
    }
    if (p.exclusiveMaximum !== undefined) parts.push(`< ${p.exclusiveMaximum}`);
  } else if (kind === 'str' && p.maxLength) {
    parts.push(`${p.minLength || 0}–${p.maxLength} chars`);
  } else if (kind === 'list' && p.maxItems) {
    parts.push(`≤ ${p.maxItems} items`);
  }
  if (nullable && kind !== 'str') parts.push('empty = none');
  return parts.join(', ');
}

/**
 * Values of a varied field, from its comma-separated text: {values} or {error}.
 * @param {string} text
 * @param {{kind: Kind, p: SchemaProp}} d
 * @returns {Parsed}
 */
export function parseValues(text, {kind, p}) {
  const parts = text.split(',').map((x) => x.trim()).filter(Boolean);
  if (!parts.length) return {error: 'Give at least one value, separated by commas.'};
  /** @type {any[]} */
  const values = [];
  for (const part of parts) {
    /** @type {string | number} */
    let v = part;
    if (kind === 'int' || kind === 'num') {
      v = Number(part);
      if (!Number.isFinite(v) || (kind === 'int' && !Number.isInteger(v))) {
        return {error: `Not ${kind === 'int' ? 'a whole number' : 'a number'}: ${part}`};
      }
    } else if (kind === 'enum' && !p.enum?.includes(part)) {
      return {error: `Not one of ${p.enum?.join(', ')}: ${part}`};
    }
    if (!values.includes(v)) values.push(v);
  }
  return {values};
}

/**
 * Why this server cannot train on a catalog dataset ('' when it can): its data is missing, or it is not offered.
 * @param {DatasetInfo | undefined} info
 */
export function dataMissing(info) {
  if (!info || info.served) return '';
  return info.allowed === false ? 'not served here' : 'data missing on this server';
}
