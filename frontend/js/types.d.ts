// Types of what the REST API answers (app/schemas.py; docs/API.md) and of the page's globals, for the type
// check only (scripts/test runs `tsc -p frontend`): the browser never loads this file.  A module names them in
// JSDoc, e.g. `/** @import {Run} from '../types' */`.

export type RunStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

/** A config as the API stores it: nested sections of JSON values (gxnor_core.config; docs/CONFIG.md). */
export type Config = Record<string, any>;

export interface Progress {
  epoch: number;
  fraction: number;
  epochs_done: number;
  total_epochs: number;
}

/** Run metrics by name (the catalog's `run` metrics); null until known. */
export type Summary = Record<string, number | null | undefined>;

export interface Run {
  id: number;
  name: string;
  project: string;
  team: string;
  sweep_id?: number | null;
  status: RunStatus;
  cancel_requested: boolean;
  progress: Progress;
  summary: Summary;
  config: Config;
  info?: Record<string, any> | null;
  error?: string | null;
  error_detail?: string | null;
  attempt: number;
  worker?: string | null;
  created_at: string;
  started_at?: string | null;
  finished_at?: string | null;
  /** Its tags (sorted), whether it is archived, its notes (lists leave them null): PATCH /runs/{id}. */
  tags?: string[];
  archived?: boolean;
  notes?: string | null;
}

/** POST /runs/bulk: one result per id asked for, in the order asked. */
export interface BulkOut {
  action: string;
  done: number;
  results: {id: number; ok: boolean; status: number; detail: string | null}[];
}

export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

/** One epoch's run-level figures (the catalog's `epoch` metrics). */
export interface EpochRow {
  epoch: number;
  [metric: string]: number | null | undefined;
}

export interface MetricsOut {
  run_id: number;
  total_epochs_recorded: number;
  downsampled: boolean;
  epochs: EpochRow[];
}

/** A within-epoch loss point (GET /runs/{id}/batches; docs/METRICS.md, "Batch points"). */
export interface BatchPoint {
  epoch: number;
  /** the point ends this fraction of the epoch's batches */
  fraction: number;
  /** mean training loss over the batches since the epoch's previous point */
  loss: number | null;
  samples: number;
}

export interface BatchesOut {
  run_id: number;
  points: BatchPoint[];
}

/** One layer at one epoch (gxnor_core.probes; the catalog's `layer` metrics). */
export interface LayerRecord {
  epoch: number;
  layer: string;
  kind: string;
  input_is_real: boolean;
  num_weights: number;
  macs: number;
  events: number;
  gate_event_rate: number;
  activation_sparsity: number;
  weight_sparsity: number;
  weight_states: number[] | null;
  activation_levels: number[] | null;
  transition_matrix?: number[][] | null;
  transitions?: number | null;
  moves?: number | null;
}

export interface LayersOut {
  run_id: number;
  records: LayerRecord[];
}

export interface CompareRun {
  id: number;
  name: string;
  status: RunStatus;
  summary: Summary;
  config: Config;
  /** The sweep point the run belongs to (its `group`: the same overrides under each seed); null: no sweep. */
  sweep: {id: number; point: number; overrides: Record<string, any>} | null;
}

export interface CompareOut {
  runs: CompareRun[];
  config_diff: Record<string, any[]>;
  metric: string;
  epochs: number[];
  series: Record<string, (number | null)[]>;
  /** Run id → seconds of training from the run's start to the end of each epoch, aligned with `epochs`. */
  wall_time: Record<string, (number | null)[]>;
  layers: Record<string, Record<string, Record<string, number | null>>>;
  /** With `costs=true`: run id → its totals per scheme at its last recorded epoch (null: no epoch yet). */
  costs?: Record<string, RunCostTotals | null>;
  /** With `skip_missing=true`: the ids asked for that are not there (deleted, or not visible). */
  missing?: number[];
}

/** Operation counts per sample of one scheme, for a layer or the network (gxnor_core.costs; GET /runs/{id}/costs). */
export interface CostCounts {
  macs: number;
  executed: number;
  resting: number;
  xnor: number;
  int_add: number;
  float_mult: number;
  float_add: number;
  weight_bytes: number;
  activation_bytes: number | null;
  compute_pj: number;
  memory_pj: number | null;
  energy_pj: number | null;
}

export interface CostTotals extends CostCounts {
  resting_fraction: number | null;
  energy_vs_full_precision: number | null;
}

export interface CostLayer {
  layer: string;
  kind: string | null;
  type: 'xnor' | 'real_input' | 'float_weights';
  macs: number;
  padded_macs: number | null;
  input_values: number | null;
  num_weights: number;
  weight_levels: number | null;
  input_levels: number | null;
  weight_bits: number;
  input_bits: number;
  weight_sparsity: number | null;
  activation_sparsity: number | null;
  events: number;
}

export interface SchemeCosts {
  name: string;
  label: string;
  assumption: string;
  total: CostTotals;
  layers: (CostCounts & {layer: string})[];
}

/** The energy per operation a server prices with (GXNOR_ENERGY_TABLE). */
export interface EnergyTable {
  source: string;
  node: string;
  [op: string]: string | number;
}

/** GET /runs/{id}/costs */
export interface CostsOut {
  run_id: number;
  epoch: number | null;
  epochs_done: number;
  best_epoch: number | null;
  layers: CostLayer[];
  schemes: SchemeCosts[];
  energy_table: EnergyTable;
}

/** GET /runs/{id}/model/profile: an exported model measured on the serving machine (docs/EXPORT.md). */
export interface ModelProfile {
  run_id: number;
  which: 'best' | 'latest';
  epoch: number | null;
  best_epoch: number | null;
  format_version: number;
  size_bytes: number;
  fp32_bytes: number;
  input_shape: number[];
  classes: number;
  layers: {name: string; role: 'real_input' | 'xnor' | 'output'; kind: 'conv' | 'fc'; weights: number}[];
  latency: {batch: number; ms_per_batch: number; ms_per_sample: number; repeats: number}[];
  events: {split: 'val' | 'test'; samples: number; per_sample: Record<string, number>};
  measured_at: string;
}

export interface RunCostTotals {
  epoch: number | null;
  totals: Record<string, CostTotals>;
}

/** /catalog's `costs`: the schemes in order with their assumptions, what each count is, the energy table. */
export interface CostCatalog {
  schemes: {name: string; label: string; assumption: string}[];
  counts: Record<string, string>;
  energy_table: EnergyTable;
}

export interface MetricStat {
  mean: number | null;
  std: number | null;
  n: number;
}

export interface SweepRun {
  id: number;
  name: string;
  status: RunStatus;
  index: number | null;
  group: number | null;
  seed: number | null;
  overrides: Record<string, any>;
  progress: Progress;
  summary: Summary;
}

export interface SweepResult {
  group: number;
  overrides: Record<string, any>;
  seeds: number[];
  n: number;
  n_done: number;
  metrics: Record<string, MetricStat>;
}

/** A sweep spec (gxnor_core.sweeps): a base config and a grid, a list or a random search, over seeds. */
export interface SweepSpec {
  base?: Config;
  grid?: Record<string, any[]>;
  list?: Record<string, any>[];
  random?: Record<string, {log?: boolean; [k: string]: any}>;
  budget?: number;
  seeds?: number[];
  seed?: number;
  baseline?: boolean;
  preset?: string;
}

export interface Sweep {
  id: number;
  name: string;
  project: string;
  team: string;
  status: RunStatus;
  fields: string[];
  spec: SweepSpec;
  counts: Partial<Record<RunStatus, number>>;
  total: number;
  progress: number;
  created_at: string;
  cancelled_at: string | null;
}

export interface SweepDetail extends Sweep {
  runs: SweepRun[];
  results: SweepResult[];
  pareto: number[];
}

export interface SweepCreated extends Sweep {
  run_ids: number[];
}

/** One metric of the catalog (gxnor_core.metrics; docs/METRICS.md). */
export interface Metric {
  name: string;
  label: string;
  short: string;
  unit: string;
  format: 'percent' | 'integer' | 'compact' | 'duration' | 'bytes' | 'number' | string;
  better: 'lower' | 'higher' | null;
  description: string;
  digits: number;
  over_seeds: string[];
  sortable: boolean;
  filterable: boolean;
  [k: string]: any;
}

export interface MetricsCatalog {
  run: Metric[];
  epoch: Metric[];
  layer: Metric[];
  layer_sets: Record<string, string>;
  units: Record<string, {format: string; text: string}>;
  views: Record<string, string[]>;
  pareto: {x: string; y: string};
}

/** A JSON schema node of the config (pydantic's model_json_schema). */
export interface SchemaProp {
  type?: string;
  enum?: any[];
  anyOf?: SchemaProp[];
  $ref?: string;
  title?: string;
  description?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  maxItems?: number;
  properties?: Record<string, SchemaProp>;
  default?: any;
  [k: string]: any;
}

export interface ConfigSchema extends SchemaProp {
  properties: Record<string, SchemaProp>;
  $defs: Record<string, SchemaProp>;
}

export interface DatasetInfo {
  name: string;
  help: string;
  input_shape: number[];
  num_classes: number;
  train_pool: number;
  test_size: number;
  bundled: boolean;
  allowed: boolean;
  present: boolean;
  served: boolean;
}

export interface SweepPreset {
  description: string;
  spec: SweepSpec;
}

/** GET /catalog: everything the new-run form needs, and the metric catalog. */
export interface Catalog {
  datasets: DatasetInfo[];
  architectures: {name: string; help: string}[];
  windows: {name: string; equation: string | null; ours: boolean}[];
  optimizers: string[];
  losses: string[];
  presets: Record<string, Config>;
  defaults: Config;
  schema: ConfigSchema;
  sweep_presets: Record<string, SweepPreset>;
  metrics: MetricsCatalog;
  costs: CostCatalog;
  limits: {max_epochs: number; max_sweep_runs: number; max_queued_runs_per_team: number};
}

export interface Team {
  name: string;
  [k: string]: any;
}

/** GET /me */
export interface Me {
  user: {name: string; is_admin: boolean; [k: string]: any};
  teams: Team[];
}

/** The part of plotly.js the charts use (loaded by index.html as a plain script: `window.Plotly`). */
export interface PlotlyApi {
  react(el: HTMLElement, data: object[], layout?: object, config?: object): Promise<unknown>;
  purge(el: HTMLElement): void;
}

/** A Plotly chart's element, after its first draw. */
export interface PlotElement extends HTMLElement {
  data?: object[];
}

declare global {
  interface Window {
    Plotly?: PlotlyApi;
    SwaggerUIBundle?: any;
    ui?: any;
  }
}

/** POST /estimate: a config's or a whole sweep's estimated training time, and the team's budget (app/api/routes/estimate.py). */
export interface Estimate {
  runs: number;
  epochs: number;
  total_seconds: number;
  kinds: {arch: string; dataset: string; device: string; runs: number; epochs: number; seconds_per_epoch: number;
    total_seconds: number; source: string; learned_from: number}[];
  team: {name: string; queued_runs: number; queued_seconds: number; running_runs: number; max_queued_runs: number;
    max_queued_seconds: number | null; max_running: number | null; fits: boolean} | null;
}

/** GET /workers: every worker process and its heartbeat (app/api/routes/workers.py). */
export interface WorkerOut {
  id: string;
  hostname: string;
  pid: number;
  device: string;
  concurrency: number;
  alive: boolean;
  started_at: string;
  last_seen: string;
  busy: boolean;
  /** Named only when it is one of your teams' runs. */
  run: {id: number; name: string | null} | null;
}

export interface WorkersOut {
  workers: WorkerOut[];
  alive: number;
}

/** GET /queue: your teams' queued runs, each with its place in the whole queue. */
export interface QueuedRun {
  id: number;
  name: string;
  project: string;
  team: string;
  position: number;
  ahead: number;
  seconds: number;
  eta_seconds: number | null;
}

export interface QueueOut {
  length: number;
  workers_alive: number;
  capacity: number;
  items: QueuedRun[];
}

/** GET /runs/{id}/queue: one run's place in the queue (null fields unless it is queued). */
export interface RunQueueOut {
  id: number;
  status: RunStatus;
  length: number;
  workers_alive: number;
  capacity: number;
  position: number | null;
  ahead: number | null;
  seconds: number | null;
  eta_seconds: number | null;
}
