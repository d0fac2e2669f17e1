// Run detail: live over SSE while running; curves, per-layer weight states, transitions, activations, gate events.
import {endpoints} from '../api.js';
import {confirmButton, fill, h, toast} from '../dom.js';
import {chartCard, colorFor, draw, stateColors, throttled} from '../charts.js';
import {
  ACTIVE, FINISHED, download, flatten, fmtCompact, fmtDuration, fmtInt, fmtNum, fmtPct, fmtTime, isNum, levelLabels, parseTime,
  progressFraction, showValue, stateLabels,
} from '../util.js';

const METRIC_POINTS = 500;
const LAYER_POINTS = 200;
const SERIES = {train: colorFor(0), val: colorFor(1), test: colorFor(3)};
const PCT_AXIS = {tickformat: '.2~%', rangemode: 'tozero'};

/** An epoch axis: whole-number ticks when there are few epochs. */
function epochAxis(epochs) {
  const span = epochs.length ? epochs.at(-1) - epochs[0] : 0;
  return {title: {text: 'epoch'}, dtick: span <= 12 ? 1 : undefined};
}

export function mount(root, {id}, life) {
  document.title = `Run #${id} — GXNOR Lab`;
  const st = {
    run: null,
    metrics: [],            // run-level rows, ascending epoch
    metricsTotal: 0,        // epochs recorded (the API may have thinned them)
    layers: new Map(),      // epoch → Map(layer → record)
    layerNames: [],
    layerMeta: new Map(),   // layer → first record (kind, input_is_real, num_weights, macs)
    layerTotal: null,
    sliderIdx: 0,
    follow: true,           // the slider stays on the latest epoch until the user moves it
    live: false,
  };

  // ---- skeleton
  const title = h('h1', {id: 'run-title'});
  const badge = h('span', {class: 'badge', id: 'run-status'});
  const actions = h('div', {class: 'actions', id: 'run-actions'});
  const progress = h('div', {class: 'progress big', id: 'run-progress'});
  const liveNote = h('span', {class: 'muted small', id: 'live-state'});
  const meta = h('div', {class: 'meta'});
  const errorBox = h('div', {id: 'run-error'});
  const cards = h('div', {class: 'cards', id: 'run-cards'});
  const loss = chartCard({id: 'chart-loss', title: 'Loss', note: 'per epoch'});
  const errs = chartCard({id: 'chart-error', title: 'Error', note: 'dashed: epoch of best validation error'});
  const net = chartCard({id: 'chart-network', title: 'Sparsity, gate events, transitions', note: 'whole network'});
  const slider = h('input', {type: 'range', min: 0, max: 0, value: 0, step: 1, id: 'epoch-slider', 'aria-label': 'Epoch for the histograms'});
  const sliderOut = h('output', {for: 'epoch-slider', id: 'epoch-label'});
  const sliderNote = h('span', {class: 'muted small'});
  const hwEvents = chartCard({id: 'chart-hw-events', title: 'Gate events per sample vs dense MACs', note: 'at the selected epoch'});
  const hwRate = chartCard({id: 'chart-hw-rate', title: 'Gate-event rate per layer', note: 'events / dense MACs'});
  const layersBox = h('div', {id: 'layers'});
  const configBox = h('div', {class: 'panel', id: 'run-config'});
  const status = h('p', {class: 'muted'}, 'Loading…');

  root.append(
    h('div', {class: 'page-head'}, h('span', {class: 'muted mono'}, `#${id}`), title, badge, actions),
    h('div', {class: 'toolbar'}, progress, liveNote),
    meta, errorBox, status, cards,
    h('h2', null, 'Training curves'),
    h('div', {class: 'chart-grid'}, loss.card, errs.card, net.card),
    h('h2', null, 'Layers'),
    h('div', {class: 'panel epoch-slider'}, h('label', {for: 'epoch-slider'}, 'Histograms at'), slider, sliderOut, sliderNote),
    h('div', {class: 'chart-grid'}, hwEvents.card, hwRate.card),
    h('div', {style: {height: '.8rem'}}),
    layersBox,
    h('h2', null, 'Config'),
    configBox,
  );

  // ---- data helpers
  const lastMetricEpoch = () => (st.metrics.length ? st.metrics.at(-1).epoch : 0);
  const layerEpochs = () => [...st.layers.keys()].sort((a, b) => a - b);
  const lastLayerEpoch = () => { const e = layerEpochs(); return e.length ? e.at(-1) : 0; };

  function upsertMetric(m) {
    const last = lastMetricEpoch();
    if (m.epoch > last) st.metrics.push(m);
    else {
      const i = st.metrics.findIndex((x) => x.epoch >= m.epoch);
      if (st.metrics[i].epoch === m.epoch) st.metrics[i] = m; else st.metrics.splice(i, 0, m);
    }
    st.metricsTotal = Math.max(st.metricsTotal, m.epoch);
  }

  function addLayerRecords(records) {
    for (const r of records) {
      if (!st.layers.has(r.epoch)) st.layers.set(r.epoch, new Map());
      st.layers.get(r.epoch).set(r.layer, r);
      if (!st.layerMeta.has(r.layer)) { st.layerMeta.set(r.layer, r); st.layerNames.push(r.layer); }
    }
  }

  // ---- redraws (throttled to ≤10/s, paused while the tab is hidden)
  const dirty = new Set();
  const redraw = throttled(() => {
    const what = new Set(dirty);
    dirty.clear();
    if (what.has('curves')) drawCurves();
    if (what.has('layers')) drawLayers();
    if (what.has('layers') || what.has('epoch')) drawAtEpoch();
  }, 100);
  life.onCleanup(() => redraw.dispose());
  const schedule = (...parts) => { parts.forEach((p) => dirty.add(p)); redraw(); };

  // ---- header
  function renderHeader() {
    const r = st.run;
    title.textContent = r.name;
    document.title = `${r.name} (#${r.id}) — GXNOR Lab`;
    renderProgress();
    renderActions();
    const started = parseTime(r.started_at);
    const finished = parseTime(r.finished_at);
    const dur = started ? ((finished || new Date()) - started) / 1000 : null;
    const item = (k, v) => h('span', null, `${k} `, h('b', {text: v}));
    fill(meta,
      item('project', r.project), r.team ? item('team', r.team) : null,
      r.sweep_id ? h('span', {id: 'run-sweep'}, 'sweep ', h('a', {href: `#/sweeps/${r.sweep_id}`}, `#${r.sweep_id}`)) : null,
      item('created', fmtTime(r.created_at)), item('started', fmtTime(r.started_at)),
      item('finished', fmtTime(r.finished_at)), item('duration', fmtDuration(dur)),
      r.worker ? item('worker', r.worker) : null, r.attempt > 1 ? item('attempt', String(r.attempt)) : null);
    if (r.error) {
      const open = errorBox.querySelector('#error-detail')?.open ?? false;  // (kept open across refreshes)
      fill(errorBox, h('h3', {class: 'muted'}, r.status === 'failed' ? 'Error' : 'Message'),
        h('pre', {class: 'error-text', id: 'error-text', text: r.error}),
        r.error_detail ? h('details', {class: 'preview error-detail', id: 'error-detail', open},
          h('summary', null, 'Traceback (admins only)'), h('pre', {text: r.error_detail})) : null);
    } else {
      errorBox.replaceChildren();
    }
    renderCards();
    renderConfig();
  }

  function renderProgress() {
    const r = st.run;
    const p = r.progress;
    const frac = progressFraction(r);
    badge.className = `badge ${r.status}`;
    badge.textContent = r.cancel_requested && ACTIVE.includes(r.status) ? `${r.status} · cancelling` : r.status;
    let label = `${p.epochs_done} / ${p.total_epochs} epochs`;
    if (r.status === 'running' && p.epoch > p.epochs_done) label += ` · epoch ${p.epoch} ${Math.round((p.fraction || 0) * 100)}%`;
    if (r.status === 'queued') label = 'waiting for a worker';
    fill(progress,
      h('div', {class: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': Math.round(frac * 100),
        'data-progress': frac.toFixed(4)}, h('div', {style: {width: `${(frac * 100).toFixed(1)}%`}})),
      h('span', {class: 'label'}, label));
    fill(liveNote, st.live ? [h('span', {class: 'live-dot'}), 'live'] : '');
  }

  let actionsKey = '';
  function renderActions() {
    const r = st.run;
    const key = `${r.status}|${r.cancel_requested}|${r.progress.epochs_done > 0}`;
    if (key === actionsKey) return;
    actionsKey = key;
    const items = [h('a', {class: 'button', href: `#/new?clone=${r.id}`, id: 'clone-run'}, 'Clone')];
    if (r.progress.epochs_done > 0) {
      const dl = h('button', {type: 'button', id: 'checkpoint-link',
        title: 'Latest checkpoint (load with gxnor_core.load_model)'}, 'Checkpoint ↓');
      dl.addEventListener('click', async () => {
        dl.disabled = true;
        try {
          const {url} = await endpoints.checkpointLink(r.id);
          const a = h('a', {href: url, download: ''});
          document.body.append(a);
          a.click();
          a.remove();
        } catch (err) { toast(err.message, 'error'); } finally { dl.disabled = false; }
      });
      items.push(dl);
    }
    if (ACTIVE.includes(r.status)) {
      const b = h('button', {type: 'button', disabled: r.cancel_requested, id: 'cancel-run'}, r.cancel_requested ? 'Cancelling…' : 'Cancel');
      b.addEventListener('click', async () => {
        b.disabled = true;
        try { st.run = await endpoints.cancel(r.id); renderHeader(); } catch (err) { toast(err.message, 'error'); b.disabled = false; }
      });
      items.push(b);
    } else if (FINISHED.includes(r.status)) {
      items.push(confirmButton('Delete', 'Confirm delete', async () => {
        try { await endpoints.remove(r.id); toast(`Run #${r.id} deleted`); location.hash = '#/runs'; } catch (err) { toast(err.message, 'error'); }
      }));
    }
    fill(actions, items);
  }

  function renderCards() {
    const s = st.run.summary || {};
    const card = (k, v, hint, sub) => h('div', {class: 'panel card', title: hint || null}, h('div', {class: 'k'}, k), h('div', {class: 'v', text: v}),
      sub ? h('div', {class: 'sub', text: sub}) : null);
    const last = st.layers.get(lastLayerEpoch());
    const recs = last ? [...last.values()] : [];
    const events = recs.reduce((a, r) => a + (r.events || 0), 0);
    const macs = recs.reduce((a, r) => a + (r.macs || 0), 0);
    const bits = recs.reduce((a, r) => a + (r.weight_states ? Math.ceil(Math.log2(r.weight_states.length)) : 32) * r.num_weights, 0);
    fill(cards,
      card('Best val error', fmtPct(s.best_val_error), null, s.best_epoch ? `at epoch ${s.best_epoch}` : null),
      card('Test error', fmtPct(s.test_error), 'Test error at the epoch of best validation error'),
      card('Best test error', fmtPct(s.best_test_error), 'Best test error of any epoch (reference only)'),
      card('Gate-event rate', fmtPct(s.gate_event_rate, 1), 'Gate events / dense MACs, last epoch'),
      card('Activation sparsity', fmtPct(s.activation_sparsity, 1)),
      card('Weight sparsity', fmtPct(s.weight_sparsity, 1)),
      card('Gate events / inference', recs.length ? fmtCompact(events) : '—',
        recs.length ? `${fmtInt(events)} mean gate events per sample of ${fmtInt(macs)} dense MACs` : null,
        recs.length ? `of ${fmtCompact(macs)} dense MACs` : null),
      card('Weight memory', recs.length ? `${fmtNum(bits / 8 / 1024, 3)} KiB` : '—', 'States packed at ceil(log2(2^N+1)) bits; 32 bits for full precision',
        recs.length ? `${fmtNum(bits / Math.max(1, recs.reduce((a, r) => a + r.num_weights, 0)), 3)} bits / weight` : null));
  }

  let configShown = false;
  function renderConfig() {
    if (configShown) return;
    configShown = true;
    const flat = flatten(st.run.config);
    const btn = h('button', {type: 'button', class: 'small'}, 'Download JSON');
    btn.addEventListener('click', () => download(`run-${id}-config.json`, JSON.stringify(st.run.config, null, 2), 'application/json'));
    fill(configBox,
      h('div', {class: 'toolbar', style: {padding: '.6rem .6rem 0'}}, btn, h('a', {class: 'button small', href: `#/new?clone=${id}`}, 'Clone and edit')),
      h('table', {class: 'kv', style: {width: '100%'}}, h('tbody', null,
        Object.entries(flat).map(([k, v]) => h('tr', null, h('td', {text: k}), h('td', {class: 'mono', text: showValue(v)}))))));
  }

  // ---- curves
  function line(key, label, color, dash) {
    return {type: 'scatter', mode: st.metrics.length > 1 ? 'lines' : 'markers', name: label, meta: key,
      x: st.metrics.map((m) => m.epoch), y: st.metrics.map((m) => (isNum(m[key]) ? m[key] : null)),
      line: {color, width: 2, dash}, marker: {color, size: 5}, hovertemplate: `${label}: %{y:.4g}<extra>epoch %{x}</extra>`};
  }

  function drawCurves() {
    const xaxis = epochAxis(st.metrics.map((m) => m.epoch));
    const none = noData();
    draw(loss.graph, st.metrics.length ? [line('train_loss', 'train', SERIES.train), line('val_loss', 'validation', SERIES.val),
      line('test_loss', 'test', SERIES.test, 'dot')] : [], {xaxis, yaxis: {title: {text: 'loss'}}}, none);
    const best = st.run?.summary?.best_epoch;
    draw(errs.graph, st.metrics.length ? [line('train_error', 'train', SERIES.train), line('val_error', 'validation', SERIES.val),
      line('test_error', 'test', SERIES.test, 'dot')] : [], {
      xaxis, yaxis: {title: {text: 'error'}, ...PCT_AXIS},
      shapes: best ? [{type: 'line', xref: 'x', yref: 'paper', x0: best, x1: best, y0: 0, y1: 1,
        line: {dash: 'dash', width: 1, color: SERIES.val}}] : [],
    }, none);
    draw(net.graph, st.metrics.length ? [
      line('gate_event_rate', 'gate-event rate', colorFor(4)), line('activation_sparsity', 'activation sparsity', colorFor(5)),
      line('weight_sparsity', 'weight sparsity', colorFor(8)), line('transition_rate', 'transition rate', colorFor(2), 'dot'),
    ] : [], {xaxis, yaxis: {title: {text: 'fraction'}, ...PCT_AXIS}}, none);
  }

  // ---- layers
  const layerViews = new Map();  // layer → {composition, hist, trans, act, levels, matrix, facts}

  function layerView(name) {
    if (layerViews.has(name)) return layerViews.get(name);
    const m = st.layerMeta.get(name);
    const comp = chartCard({id: `layer-${name}-composition`, title: 'Weight-state composition', note: 'fraction of weights per state over epochs'});
    const hist = chartCard({id: `layer-${name}-histogram`, title: 'Weight states', note: 'at the selected epoch'});
    const trans = chartCard({id: `layer-${name}-transitions`, title: 'Transitions per epoch', note: 'weights that changed state; all DST moves'});
    const act = chartCard({id: `layer-${name}-activation`, title: 'Input sparsity and gate-event rate', note: 'probe set'});
    const levels = chartCard({id: `layer-${name}-levels`, title: 'Input activation levels', note: 'at the selected epoch'});
    const matrix = h('section', {class: 'panel chart-card'});
    const facts = h('span', {class: 'facts'});
    const fpNote = h('span', {class: 'badge note hidden', text: 'full-precision weights: no discrete states or transitions'});
    const section = h('section', {class: 'panel layer', 'data-layer': name, id: `layer-${name}`},
      h('header', null, h('h3', {text: name}), h('span', {class: 'badge note', text: m.kind}),
        m.input_is_real ? h('span', {class: 'badge real', title: 'Its input is the (real-valued) data, so its multiplies are not gated XNORs',
          text: 'real-valued input — not an XNOR layer'}) : null, fpNote, facts),
      h('div', {class: 'chart-grid'}, comp.card, hist.card, matrix, trans.card, act.card, levels.card));
    layersBox.append(section);
    const v = {comp, hist, trans, act, levels, matrix, facts, fpNote, section};
    layerViews.set(name, v);
    return v;
  }

  function weightH() { return st.run?.config?.weights?.H ?? 1; }

  /** What an empty chart says: still waiting, or nothing was ever recorded. */
  function noData() {
    return st.run && FINISHED.includes(st.run.status) ? 'No epochs recorded' : 'No data yet';
  }

  function drawLayers() {
    const epochs = layerEpochs();
    updateSlider(epochs);
    const xaxis = epochAxis(epochs);
    const none = noData();
    for (const name of st.layerNames) {
      const v = layerView(name);
      const recs = epochs.map((e) => st.layers.get(e).get(name)).filter(Boolean);
      const ex = recs.map((r) => r.epoch);
      const m = st.layerMeta.get(name);
      v.facts.textContent = `${fmtInt(m.num_weights)} weights · ${fmtInt(m.macs)} dense MACs / sample`;
      const states = recs.find((r) => r.weight_states)?.weight_states?.length || 0;
      const fpWeights = recs.length > 0 && !states;
      for (const c of [v.comp.card, v.hist.card, v.matrix, v.trans.card]) c.classList.toggle('hidden', fpWeights);
      v.fpNote.classList.toggle('hidden', !fpWeights);
      if (!states) {
        draw(v.comp.graph, [], {}, recs.length ? 'Full-precision weights: no discrete states' : 'No data yet');
      } else {
        const labels = stateLabels(states, weightH());
        const fr = (r, i) => (r.weight_states ? r.weight_states[i] / r.num_weights : null);
        if (states <= 9) {
          const colors = stateColors(states);
          draw(v.comp.graph, labels.map((lab, i) => ({
            type: 'scatter', mode: ex.length > 1 ? 'lines' : 'lines+markers', stackgroup: 'states', name: lab, meta: i,
            x: ex, y: recs.map((r) => fr(r, i)), line: {width: 0.5, color: colors[i]}, fillcolor: colors[i], marker: {color: colors[i]},
            hovertemplate: `state ${lab}: %{y:.2%}<extra>epoch %{x}</extra>`,
          })), {xaxis, yaxis: {title: {text: 'fraction of weights'}, tickformat: '.2~%', range: [0, 1]},
            legend: {title: {text: 'state '}}});
        } else {
          draw(v.comp.graph, [{type: 'heatmap', x: ex, y: labels, z: labels.map((_, i) => recs.map((r) => fr(r, i))),
            colorscale: 'Viridis', colorbar: {thickness: 10, tickformat: '.2~%'},
            hovertemplate: 'state %{y}: %{z:.2%}<extra>epoch %{x}</extra>'}],
          {xaxis, yaxis: {title: {text: 'state'}, type: 'category'}});
        }
      }
      draw(v.trans.graph, recs.some((r) => r.transitions != null) ? [
        {type: 'bar', name: 'changed state', x: ex, y: recs.map((r) => r.transitions ?? null), marker: {color: colorFor(0)},
          customdata: recs.map((r) => (r.transitions ?? 0) / r.num_weights), hovertemplate: '%{y} weights (%{customdata:.2%})<extra>epoch %{x}</extra>'},
        {type: 'scatter', mode: ex.length > 1 ? 'lines' : 'markers', name: 'DST moves', x: ex, y: recs.map((r) => r.moves ?? null),
          line: {color: colorFor(1), width: 2}, marker: {color: colorFor(1)}, hovertemplate: '%{y} moves<extra>epoch %{x}</extra>'},
      ] : [], {xaxis, yaxis: {title: {text: 'weights'}, rangemode: 'tozero'}, bargap: 0.15},
      recs.length ? 'Full-precision weights: no transitions' : 'No data yet');
      const mode = ex.length > 1 ? 'lines' : 'markers';
      draw(v.act.graph, recs.length ? [
        {type: 'scatter', mode, name: 'input sparsity', x: ex, y: recs.map((r) => r.activation_sparsity), line: {color: colorFor(5), width: 2},
          marker: {color: colorFor(5)}, hovertemplate: 'input zeros: %{y:.2%}<extra>epoch %{x}</extra>'},
        {type: 'scatter', mode, name: 'gate-event rate', x: ex, y: recs.map((r) => r.gate_event_rate), line: {color: colorFor(4), width: 2},
          marker: {color: colorFor(4)}, hovertemplate: 'gate events: %{y:.2%} of MACs<extra>epoch %{x}</extra>'},
        {type: 'scatter', mode, name: 'weight sparsity', x: ex, y: recs.map((r) => r.weight_sparsity), line: {color: colorFor(8), width: 1.5, dash: 'dot'},
          marker: {color: colorFor(8)}, hovertemplate: 'zero weights: %{y:.2%}<extra>epoch %{x}</extra>'},
      ] : [], {xaxis, yaxis: {title: {text: 'fraction'}, tickformat: '.2~%', range: [0, 1]}});
    }
    const hx = epochs;
    draw(hwRate.graph, st.layerNames.map((name, i) => {
      const recs = hx.map((e) => st.layers.get(e).get(name));
      return {type: 'scatter', mode: hx.length > 1 ? 'lines' : 'markers', name: layerLabel(name), x: hx,
        y: recs.map((r) => r?.gate_event_rate ?? null), line: {color: colorFor(i), width: 2, dash: st.layerMeta.get(name).input_is_real ? 'dot' : 'solid'},
        marker: {color: colorFor(i)}, hovertemplate: `${layerLabel(name)}: %{y:.2%}<extra>epoch %{x}</extra>`};
    }), {xaxis, yaxis: {title: {text: 'gate-event rate'}, tickformat: '.2~%', rangemode: 'tozero'}}, none);
    renderCards();
  }

  function layerLabel(name) {
    return st.layerMeta.get(name)?.input_is_real ? `${name} (real input)` : name;
  }

  function updateSlider(epochs) {
    const max = Math.max(0, epochs.length - 1);
    slider.max = String(max);
    slider.disabled = epochs.length < 2;
    if (st.follow || st.sliderIdx > max) st.sliderIdx = max;
    slider.value = String(st.sliderIdx);
    const thinned = st.layerTotal !== null && st.layerTotal > epochs.length;
    sliderNote.textContent = thinned ? `${epochs.length} of ${st.layerTotal} epochs kept (point budget)` : '';
  }

  function drawAtEpoch() {
    const epochs = layerEpochs();
    if (!epochs.length) { sliderOut.textContent = 'no epoch yet'; drawEmptyAtEpoch(); return; }
    const epoch = epochs[Math.min(st.sliderIdx, epochs.length - 1)];
    const latest = epoch === epochs.at(-1);
    sliderOut.textContent = `epoch ${epoch}${latest ? ' (latest)' : ` of ${epochs.at(-1)}`}`;
    slider.setAttribute('aria-valuetext', sliderOut.textContent);
    const at = st.layers.get(epoch);
    for (const name of st.layerNames) {
      const v = layerView(name);
      const r = at.get(name);
      if (r?.weight_states) {
        const labels = stateLabels(r.weight_states.length, weightH());
        draw(v.hist.graph, [{type: 'bar', x: labels, y: r.weight_states, marker: {color: stateColors(labels.length)},
          customdata: r.weight_states.map((c) => c / r.num_weights), text: r.weight_states.map((c) => (labels.length <= 9 ? fmtPct(c / r.num_weights, 1) : '')),
          textposition: 'auto', hovertemplate: 'state %{x}: %{y} weights (%{customdata:.2%})<extra></extra>'}],
        {xaxis: {type: 'category', title: {text: `state (epoch ${epoch})`}}, yaxis: {title: {text: 'weights'}}, bargap: 0.1});
      } else {
        draw(v.hist.graph, [], {}, r ? 'Full-precision weights' : 'No record at this epoch');
      }
      if (r?.activation_levels) {
        const lv = r.activation_levels;
        const total = lv.reduce((a, b) => a + b, 0) || 1;
        draw(v.levels.graph, [{type: 'bar', x: levelLabels(lv.length), y: lv.map((c) => c / total), marker: {color: colorFor(5)},
          hovertemplate: 'level %{x}: %{y:.2%}<extra></extra>'}],
        {xaxis: {type: 'category', title: {text: `level (epoch ${epoch})`}}, yaxis: {title: {text: 'fraction of inputs'}, tickformat: '.2~%'}, bargap: 0.1});
      } else {
        draw(v.levels.graph, [], {}, r?.input_is_real ? 'Real-valued input: no activation levels' : r ? 'Full-precision activations' : 'No record at this epoch');
      }
      renderMatrix(v.matrix, r, epoch);
    }
    const recs = st.layerNames.map((n) => at.get(n)).filter(Boolean);
    const labels = recs.map((r) => layerLabel(r.layer));
    const sizes = recs.flatMap((r) => [r.macs, r.events]).filter((v) => v > 0);
    const logY = sizes.length > 1 && Math.max(...sizes) / Math.min(...sizes) > 30;  // CNNs: layers differ by decades
    draw(hwEvents.graph, recs.length ? [
      {type: 'bar', name: 'dense MACs', x: labels, y: recs.map((r) => r.macs), marker: {color: 'rgba(140,140,140,0.55)'},
        hovertemplate: '%{x}: %{y:,} dense MACs<extra></extra>'},
      {type: 'bar', name: 'gate events', x: labels, y: recs.map((r) => r.events), marker: {color: colorFor(4)},
        text: recs.map((r) => fmtPct(r.gate_event_rate, 1)), textposition: 'outside', cliponaxis: false,
        hovertemplate: '%{x}: %{y:,.0f} events (%{text} of MACs)<extra></extra>'},
    ] : [], {barmode: 'group', xaxis: {type: 'category', title: {text: `layer (epoch ${epoch})`}}, yaxis: {title: {text: logY ? 'per sample (log)' : 'per sample'}, type: logY ? 'log' : 'linear', dtick: logY ? 1 : undefined}});
  }

  function drawEmptyAtEpoch() {
    for (const v of layerViews.values()) { draw(v.hist.graph, []); draw(v.levels.graph, []); }
    draw(hwEvents.graph, []);
  }

  function renderMatrix(box, r, epoch) {
    const tm = r?.transition_matrix;
    if (!tm) {
      if (box.querySelector('.js-plotly-plot')) window.Plotly.purge(box.querySelector('.js-plotly-plot'));
      fill(box, h('header', null, h('h3', null, 'State transitions')),
        h('p', {class: 'muted small'}, r ? 'Full-precision weights: no transitions.' : 'No record at this epoch.'));
      return;
    }
    const labels = stateLabels(tm.length, weightH());
    const summary = h('p', {class: 'muted small'}, `${fmtInt(r.transitions)} weights changed state (${fmtPct(r.transitions / r.num_weights)}); `,
      `${fmtInt(r.moves)} DST moves in all.`);
    const head = h('header', null, h('h3', null, 'State transitions'), h('span', {class: 'note', text: `epoch ${epoch}: start state → end state`}));
    if (tm.length > 9) {  // too many states for a table: a heatmap of the off-diagonal counts
      let graph = box.querySelector('.chart');
      if (!graph) {
        graph = h('div', {class: 'chart short'});
        fill(box, head, graph, summary);
      } else {
        box.replaceChild(head, box.querySelector('header'));
        box.replaceChild(summary, box.querySelector('p'));
      }
      draw(graph, [{type: 'heatmap', x: labels, y: labels, z: tm.map((row, i) => row.map((c, j) => (i === j ? null : c))),
        colorscale: 'Blues', reversescale: false, colorbar: {thickness: 10},
        hovertemplate: '%{y} → %{x}: %{z} weights<extra></extra>'}],
      {xaxis: {type: 'category', title: {text: 'to'}}, yaxis: {type: 'category', title: {text: 'from'}}, margin: {t: 8}});
      return;
    }
    const max = Math.max(1, ...tm.flatMap((row, i) => row.filter((_, j) => j !== i)));
    const accent = getComputedStyle(document.documentElement).getPropertyValue('--accent').trim() || '#2b66d9';
    fill(box, head,
      h('div', {class: 'table-wrap'}, h('table', {class: 'matrix'},
        h('thead', null, h('tr', null, h('th', null, 'from ╲ to'), labels.map((l) => h('th', {text: l})))),
        h('tbody', null, tm.map((row, i) => h('tr', null, h('th', {text: labels[i]}),
          row.map((c, j) => {
            const td = h('td', {class: i === j ? 'diag' : '', text: fmtInt(c), title: i === j ? 'stayed' : `${labels[i]} → ${labels[j]}`});
            if (i !== j && c > 0) td.style.background = `color-mix(in srgb, ${accent} ${Math.round(10 + 50 * c / max)}%, transparent)`;
            return td;
          })))))),
      summary);
  }

  slider.addEventListener('input', () => {
    st.sliderIdx = Number(slider.value);
    st.follow = st.sliderIdx === Number(slider.max);
    schedule('epoch');
  });

  // ---- loading and live updates
  let fetchingLayers = false;
  let wantLayersUpTo = 0;

  /** Fetch the layer records of epochs up to wantLayersUpTo: one epoch at a time while live, all at once after a gap. */
  async function fetchLayers() {
    if (fetchingLayers) return;  // the running loop picks up the new target
    fetchingLayers = true;
    let stalls = 0;
    try {
      while (life.alive && wantLayersUpTo > lastLayerEpoch() && stalls < 10) {
        const have = lastLayerEpoch();
        const missing = st.metrics.map((m) => m.epoch).filter((e) => e > have && e <= wantLayersUpTo);
        if (missing.length && missing.length <= 5) {
          for (const e of missing) addLayerRecords((await endpoints.layers(id, {epoch: e}, life.signal)).records);
        } else {
          const all = await endpoints.layers(id, {points: LAYER_POINTS}, life.signal);
          st.layers.clear();
          addLayerRecords(all.records);
        }
        if (!life.alive) return;
        schedule('layers');
        if (lastLayerEpoch() === have) {  // not written yet (or this run records no layers)
          stalls += 1;
          await new Promise((res) => setTimeout(res, 500));
        }
      }
    } catch (err) {
      if (life.alive && err.name !== 'AbortError') console.warn('layers', err);
    } finally {
      fetchingLayers = false;
    }
  }

  let runRefresh = null;
  const refreshRun = throttled(async () => {
    if (runRefresh) return;
    runRefresh = endpoints.run(id, life.signal).then((r) => {
      if (!life.alive) return;
      st.run = r;
      renderHeader();
      schedule('curves');
    }).catch(() => {}).finally(() => { runRefresh = null; });
  }, 1500);
  life.onCleanup(() => refreshRun.dispose());

  function openStream() {
    const es = new EventSource(endpoints.eventsUrl(id, lastMetricEpoch()));
    life.onCleanup(() => es.close());
    es.addEventListener('open', () => { st.live = true; renderProgress(); });
    es.addEventListener('progress', (ev) => {
      const d = JSON.parse(ev.data);
      const statusChanged = d.status !== st.run.status;
      st.run.status = d.status;
      st.run.progress = {epoch: d.epoch, fraction: d.fraction, epochs_done: d.epochs_done, total_epochs: d.total_epochs};
      renderProgress();
      renderActions();
      if (statusChanged) refreshRun();
    });
    es.addEventListener('epoch', (ev) => {
      const m = JSON.parse(ev.data);
      upsertMetric(m);
      schedule('curves');
      wantLayersUpTo = Math.max(wantLayersUpTo, m.epoch);
      st.layerTotal = Math.max(st.layerTotal ?? 0, m.epoch);
      fetchLayers();
      refreshRun();
    });
    es.addEventListener('status', async (ev) => {
      es.close();  // the server ends the stream here; do not let EventSource reconnect
      st.live = false;
      const d = JSON.parse(ev.data);
      if (d.status === 'deleted') {
        fill(errorBox, h('div', {class: 'banner warn', text: 'This run was deleted.'}));
        renderProgress();
        return;
      }
      try { st.run = await endpoints.run(id, life.signal); } catch { return; }
      if (!life.alive) return;
      renderHeader();
      wantLayersUpTo = Math.max(wantLayersUpTo, st.run.progress.epochs_done);
      await fetchLayers();
      schedule('curves', 'layers');
    });
    es.addEventListener('error', () => {
      if (es.readyState === EventSource.CLOSED) { st.live = false; renderProgress(); return; }
      fill(liveNote, 'reconnecting…');
    });
  }

  (async () => {
    try {
      st.run = await endpoints.run(id, life.signal);
      const [mx, lx] = await Promise.all([
        endpoints.metrics(id, {points: METRIC_POINTS, metric: 'val_error'}, life.signal),
        endpoints.layers(id, {points: LAYER_POINTS}, life.signal),
      ]);
      if (!life.alive) return;
      st.metrics = mx.epochs;
      st.metricsTotal = mx.total_epochs_recorded;
      addLayerRecords(lx.records);
      st.layerTotal = st.run.progress.epochs_done;
    } catch (err) {
      if (!life.alive || err.name === 'AbortError') return;
      root.replaceChildren(h('div', {class: 'empty'},
        h('p', {text: err.status === 404 ? `Run #${id} does not exist (any more).` : `Could not load the run: ${err.message}`}),
        h('a', {href: '#/runs'}, 'Back to the runs')));
      return;
    }
    status.remove();
    if (st.metricsTotal > st.metrics.length) {
      cards.before(h('p', {class: 'muted small', text: `Curves show ${st.metrics.length} of ${st.metricsTotal} epochs (the extremes and the last are kept).`}));
    }
    renderHeader();
    schedule('curves', 'layers');
    if (ACTIVE.includes(st.run.status)) {
      wantLayersUpTo = lastMetricEpoch();
      fetchLayers();
      openStream();
    }
  })();
}
