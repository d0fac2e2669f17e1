// @ts-check
// The foot of the form: "Queue run" or, once the form is a sweep, "Launch sweep (K runs)" with its summary and the
// full-precision baseline and its estimated cost; "Reset to defaults"; the JSON that will be sent.  Submitting posts a run or a sweep.
import {ApiError, endpoints} from '../../api.js';
import {h, toast} from '../../dom.js';
import {checkFields, checkLists, clearError, showBanner, showError} from './errors.js';
import {collect, inSweep, seeds, sweepBody, team, variedPaths} from './form.js';
import {sweepEstimate} from './estimate.js';
/** @import {FormContext} from './form.js' */

/**
 * @param {FormContext} ctx sets ctx.on.updateSweep and ctx.on.updatePreview
 * @param {{presetNote: HTMLElement, onReset: () => void}} parts the sweep preset's note (shown in a sweep), "Reset"
 */
export function formActions(ctx, {presetNote, onReset}) {
  const {fields, sweepState, heading, baseline, life} = ctx;
  const preview = h('pre', {class: 'mono'});
  const previewTitle = h('summary', null, 'Config JSON that will be sent');
  const submit = h('button', {type: 'submit', class: 'primary', id: 'submit-run'}, 'Queue run');
  const submitSweep = h('button', {type: 'submit', class: 'primary hidden', id: 'submit-sweep'}, 'Launch sweep');
  const baselineLabel = h('label', {class: 'inline hidden', for: 'f-sweep-baseline',
    title: 'The same network with full-precision weights and activations, once per seed: the paper’s comparison point'},
  baseline, 'Add a full-precision baseline');
  const sweepSummary = h('span', {class: 'muted small hidden', id: 'sweep-summary', 'aria-live': 'polite'});
  const reset = h('button', {type: 'button'}, 'Reset to defaults');
  const estimate = sweepEstimate(life);
  baseline.addEventListener('change', () => updateSweep());
  reset.addEventListener('click', onReset);

  // ---- sweep mode: any varied field (or the seeds) turns "Queue run" into "Launch sweep (K runs)"
  function updateSweep() {
    const on = inSweep(ctx);
    const s = seeds(ctx);
    if (on && s.input.classList.contains('hidden') && !s.input.value) s.input.value = String(fields.get('train.seed')?.read() ?? 0);
    s.input.classList.toggle('hidden', !on);
    s.field.input.classList.toggle('hidden', on);
    s.field.label.htmlFor = on ? s.input.id : s.field.input.id;
    const labelText = s.field.label.querySelector('.label-text');
    if (labelText) labelText.textContent = on ? 'Seeds' : s.field.labelText;
    s.field.wrap.classList.toggle('varied', on);
    s.help.textContent = on ? 'Every config runs once per seed; the results are mean ± std over the seeds.' : s.helpText;
    s.button.setAttribute('aria-pressed', String(on));
    s.button.textContent = on ? 'one seed' : 'vary';
    // The seeds stay a list while fields are varied (or on the sweep page): only a seeds-only sweep can end here.
    s.button.disabled = on && !(sweepState.seedsOn && !sweepState.forced && !variedPaths(ctx).length && sweepState.preset === null);
    s.button.title = s.button.disabled ? 'A sweep runs every config once per seed' : 'Run with several seeds';
    submit.classList.toggle('hidden', on);
    submitSweep.classList.toggle('hidden', !on);
    baselineLabel.classList.toggle('hidden', !on);
    sweepSummary.classList.toggle('hidden', !on);
    presetNote.classList.toggle('hidden', !(on && sweepState.applied !== null));
    heading.textContent = on ? (sweepState.forced ? 'New sweep' : 'New run → sweep') : heading.dataset.runTitle ?? '';
    if (on) {
      const {runs, configs, body} = sweepBody(ctx);
      submitSweep.textContent = runs === null ? 'Launch sweep' : `Launch sweep (${runs} run${runs === 1 ? '' : 's'})`;
      const varied = variedPaths(ctx);
      sweepSummary.textContent = runs === null ? 'Check the lists of values.'
        : `${varied.length ? varied.join(' × ') : body.preset ? `preset ${body.preset}` : 'one config'}: ${configs ?? '?'} config${configs === 1 ? '' : 's'}`
          + `${baseline.checked ? ' + baseline' : ''}, × ${body.seeds.length} seed${body.seeds.length === 1 ? '' : 's'}`;
    }
    updatePreview();
  }

  function updatePreview() {
    const sweeping = inSweep(ctx);
    previewTitle.textContent = sweeping ? 'Sweep request that will be sent' : 'Config JSON that will be sent';
    const sweep = sweeping ? sweepBody(ctx) : null;
    preview.textContent = JSON.stringify(sweep ? sweep.body : collect(ctx), null, 2);
    estimate.update(sweep && sweep.runs !== null ? sweep.body : null);  // any field may change the sweep's cost
  }
  ctx.on.updateSweep = updateSweep;
  ctx.on.updatePreview = updatePreview;

  async function launchSweep() {
    if (!checkLists(ctx)) return;
    submitSweep.disabled = true;
    submitSweep.textContent = 'Launching…';
    try {
      const created = await endpoints.createSweep(sweepBody(ctx).body);
      if (!life.alive) return;
      toast(`Sweep #${created.id} queued: ${created.total} runs`);
      location.hash = `#/sweeps/${created.id}`;
    } catch (err) {
      if (!life.alive) return;
      if (err instanceof ApiError && err.status === 422) showError(ctx, err, 'sweep');
      else if (err instanceof ApiError && err.status === 429) showBanner(ctx, `The team’s queue is full: ${err.message}`);
      else showBanner(ctx, `Could not launch the sweep: ${err.message}`);
    } finally {
      submitSweep.disabled = false;
      if (life.alive) updateSweep();
    }
  }

  /**
   * The form's submit: one run, or a sweep.
   * @param {SubmitEvent} ev
   */
  async function onSubmit(ev) {
    ev.preventDefault();
    ctx.banner.classList.add('hidden');
    for (const path of [...fields.keys(), ...ctx.aux.keys()]) clearError(ctx, path);
    if (!checkFields(ctx)) return;  // every value out of bounds marked at once, nothing sent
    if (inSweep(ctx)) { await launchSweep(); return; }
    submit.disabled = true;
    submit.textContent = 'Queueing…';
    try {
      const run = await endpoints.create(collect(ctx), team(ctx));
      if (!life.alive) return;
      toast(`Run #${run.id} queued`);
      location.hash = `#/runs/${run.id}`;
    } catch (err) {
      if (!life.alive) return;
      if (err instanceof ApiError && err.status === 422) showError(ctx, err, 'config');
      else if (err instanceof ApiError && err.status === 429) showBanner(ctx, `The team’s queue is full: ${err.message}`);
      else showBanner(ctx, `Could not queue the run: ${err.message}`);
    } finally {
      submit.disabled = false;
      submit.textContent = 'Queue run';
    }
  }

  return {
    els: [
      h('div', {class: 'form-actions'}, submit, submitSweep, baselineLabel, reset, sweepSummary,
        h('span', {class: 'muted small', id: 'bounds-note'}, 'Bounds are checked here and again by the server.')),
      estimate.el,
      h('details', {class: 'preview'}, previewTitle, preview),
    ],
    onSubmit,
  };
}
