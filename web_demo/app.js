// hashpack web demo: runs a compact hashpack ONNX export with onnxruntime-web, entirely in this page.
//
// Files this page reads (written by `hashpack export ... --web-demo DIR`, see web_demo/build.py):
//   manifest.json  model file names, byte sizes, input shape, how a drawing becomes an input
//   golden.json    the model's golden inputs and outputs (read through hashpack.runtime), checked here
//   samples.json   test images with their labels, shown as buttons
// window.hashpackDemo exposes the same steps to the browser test and the benchmark.

const ort = globalThis.ort;
ort.env.wasm.wasmPaths = './'; // the .mjs/.wasm pair lies next to this page
ort.env.wasm.numThreads = 1; // a plain static server sends no COOP/COEP headers, so no SharedArrayBuffer
ort.env.wasm.proxy = false;

const $ = (id) => document.getElementById(id);
const state = { manifest: null, session: null, input: null, strokes: [], padHoldsSample: false, timings: {} };

function setStatus(text, kind) {
  const el = $('status');
  el.textContent = text;
  el.dataset.state = kind;
}

async function fetchOk(url) {
  const response = await fetch(url, { cache: 'no-store' });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response;
}

async function fetchJson(url) {
  return (await fetchOk(url)).json();
}

/** Download a model file; returns its bytes and how long the download took. */
async function download(url) {
  const start = performance.now();
  const bytes = new Uint8Array(await (await fetchOk(url)).arrayBuffer());
  return { bytes, ms: performance.now() - start };
}

/** Create a session from bytes: for a compact file this is where the weights are decompressed. */
async function createSession(bytes) {
  const start = performance.now();
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: ['wasm'],
    graphOptimizationLevel: 'all',
  });
  return { session, ms: performance.now() - start };
}

function inputTensor(values, batch) {
  const [c, h, w] = state.manifest.input_shape;
  return new ort.Tensor('float32', Float32Array.from(values), [batch, c, h, w]);
}

async function runLogits(session, values, batch) {
  const feeds = { [session.inputNames[0]]: inputTensor(values, batch) };
  const outputs = await session.run(feeds);
  return outputs[session.outputNames[0]].data;
}

/** Mean time of one batch-1 run over `loops` runs (performance.now() ticks in 100 µs without isolation). */
async function batch1Latency(session, values, loops) {
  for (let i = 0; i < 5; i += 1) await runLogits(session, values, 1);
  const start = performance.now();
  for (let i = 0; i < loops; i += 1) await runLogits(session, values, 1);
  return (performance.now() - start) / loops;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function softmax(logits) {
  const max = Math.max(...logits);
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((v) => v / sum);
}

const fmtMs = (ms) => (ms >= 10 ? `${ms.toFixed(1)} ms` : ms >= 1 ? `${ms.toFixed(2)} ms` : `${(1000 * ms).toFixed(0)} µs`);
const fmtBytes = (n) => `${n.toLocaleString('en-US')}`;

// ------------------------------------------------------------------------------------------ prediction

async function predict(values) {
  const logits = Array.from(await runLogits(state.session, values, 1));
  const probabilities = softmax(logits);
  const classIndex = probabilities.indexOf(Math.max(...probabilities));
  state.input = Array.from(values);
  return { classIndex, probabilities, logits };
}

function showPrediction({ classIndex, probabilities }) {
  const labels = state.manifest.labels;
  $('prediction').textContent = labels[classIndex];
  $('prediction').dataset.classIndex = String(classIndex);
  $('confidence').textContent = `(p = ${probabilities[classIndex].toFixed(3)})`;
  const body = $('probabilities').querySelector('tbody');
  body.replaceChildren();
  probabilities.forEach((p, i) => {
    const row = document.createElement('tr');
    if (i === classIndex) row.className = 'top';
    const label = document.createElement('th');
    label.textContent = labels[i];
    const barCell = document.createElement('td');
    barCell.className = 'barcell';
    const bar = document.createElement('div');
    bar.className = 'bar';
    bar.style.width = `${(100 * p).toFixed(1)}%`;
    barCell.appendChild(bar);
    const value = document.createElement('td');
    value.textContent = p.toFixed(4);
    row.append(label, barCell, value);
    body.appendChild(row);
  });
  drawPreview(state.input);
}

async function predictAndShow(values) {
  const start = performance.now();
  const result = await predict(values);
  $('latency').textContent = fmtMs(performance.now() - start);
  showPrediction(result);
  return result;
}

// ------------------------------------------------------------------------------------------ drawing

function drawPreview(values) {
  const [, h, w] = state.manifest.input_shape;
  const canvas = $('preview');
  const ctx = canvas.getContext('2d');
  const image = ctx.createImageData(w, h);
  values.forEach((v, i) => {
    const g = Math.round(255 * Math.min(1, Math.max(0, v)));
    image.data.set([g, g, g, 255], 4 * i);
  });
  const small = new OffscreenCanvas(w, h);
  small.getContext('2d').putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
}

function clearPad() {
  const pad = $('pad');
  const ctx = pad.getContext('2d');
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, pad.width, pad.height);
  state.padHoldsSample = false;
  state.strokes = [];
}

/**
 * Turn the drawing into a model input the way the training images were made. The recorded strokes are
 * drawn again, `stroke` grid pixels wide, with their bounding box scaled (aspect kept) into a `box`-pixel
 * square centred in a grid of `block` pixels per input pixel; the grid is optionally thresholded and each
 * block averaged. For scikit-learn's digits (UCI optdigits) that is a 32×32 bitmap counted in 4×4 blocks,
 * i.e. values 0..16 / 16. Redrawing the strokes (not resampling the pad) keeps the stroke width the
 * model was trained on whatever size the user draws at.
 */
function padToInput(strokes = state.strokes) {
  const [, h, w] = state.manifest.input_shape;
  const { block, box, stroke, binary, threshold } = state.manifest.draw;
  const points = strokes.flat();
  if (!points.length) return null;
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const [x0, y0] = [Math.min(...xs), Math.min(...ys)];
  const [bw, bh] = [Math.max(...xs) - x0, Math.max(...ys) - y0];
  const gw = w * block;
  const gh = h * block;
  const scale = Math.max(bw, bh) > 0 ? (box - stroke) / Math.max(bw, bh) : 0;
  const ox = (gw - bw * scale) / 2;
  const oy = (gh - bh * scale) / 2;
  const grid = new OffscreenCanvas(gw, gh);
  const g = grid.getContext('2d');
  g.fillStyle = '#000';
  g.fillRect(0, 0, gw, gh);
  g.strokeStyle = '#fff';
  g.lineWidth = stroke;
  g.lineCap = 'round';
  g.lineJoin = 'round';
  for (const line of strokes) {
    g.beginPath();
    line.forEach(([x, y], i) => {
      const [gx, gy] = [ox + (x - x0) * scale, oy + (y - y0) * scale];
      if (i === 0) g.moveTo(gx, gy);
      g.lineTo(gx, gy);
    });
    g.stroke();
  }
  const pixels = g.getImageData(0, 0, gw, gh).data;
  const values = new Array(h * w).fill(0);
  for (let y = 0; y < gh; y += 1) {
    for (let x = 0; x < gw; x += 1) {
      let v = pixels[4 * (y * gw + x)] / 255;
      if (binary) v = v >= threshold ? 1 : 0;
      values[Math.floor(y / block) * w + Math.floor(x / block)] += v / (block * block);
    }
  }
  return values;
}

function setUpPad() {
  const pad = $('pad');
  const ctx = pad.getContext('2d');
  clearPad();
  let drawing = false;
  const point = (event) => {
    const rect = pad.getBoundingClientRect();
    return [((event.clientX - rect.left) * pad.width) / rect.width, ((event.clientY - rect.top) * pad.height) / rect.height];
  };
  pad.addEventListener('pointerdown', (event) => {
    if (state.padHoldsSample) clearPad();
    drawing = true;
    pad.setPointerCapture(event.pointerId);
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = pad.width / 14;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    const start = point(event);
    state.strokes.push([start]);
    ctx.beginPath();
    ctx.moveTo(...start);
    ctx.lineTo(...start);
    ctx.stroke();
  });
  pad.addEventListener('pointermove', (event) => {
    if (!drawing) return;
    const next = point(event);
    state.strokes[state.strokes.length - 1].push(next);
    ctx.lineTo(...next);
    ctx.stroke();
  });
  const finish = async () => {
    if (!drawing) return;
    drawing = false;
    const values = padToInput();
    if (values && state.session) await predictAndShow(values);
  };
  pad.addEventListener('pointerup', finish);
  pad.addEventListener('pointercancel', finish);
  $('clear').addEventListener('click', clearPad);
}

function paintSampleOnPad(values) {
  const [, h, w] = state.manifest.input_shape;
  const pad = $('pad');
  const ctx = pad.getContext('2d');
  clearPad();
  const cw = pad.width / w;
  const ch = pad.height / h;
  values.forEach((v, i) => {
    const g = Math.round(255 * v);
    ctx.fillStyle = `rgb(${g},${g},${g})`;
    ctx.fillRect((i % w) * cw, Math.floor(i / w) * ch, cw, ch);
  });
  state.padHoldsSample = true;
}

async function selectSample(index) {
  const sample = state.samples[index];
  paintSampleOnPad(sample.values);
  document.querySelectorAll('#samples button').forEach((b, i) => b.classList.toggle('chosen', i === index));
  return state.session ? predictAndShow(sample.values) : null; // before the model is ready: only shown
}

function setUpSamples() {
  const [, h, w] = state.manifest.input_shape;
  const holder = $('samples');
  state.samples.forEach((sample, index) => {
    const button = document.createElement('button');
    button.type = 'button';
    button.title = `test image, label ${state.manifest.labels[sample.label]}`;
    button.dataset.label = String(sample.label);
    const thumb = document.createElement('canvas');
    thumb.width = w;
    thumb.height = h;
    const image = thumb.getContext('2d').createImageData(w, h);
    sample.values.forEach((v, i) => {
      const g = Math.round(255 * v);
      image.data.set([g, g, g, 255], 4 * i);
    });
    thumb.getContext('2d').putImageData(image, 0, 0);
    button.appendChild(thumb);
    button.addEventListener('click', () => selectSample(index));
    holder.appendChild(button);
  });
}

// ------------------------------------------------------------------------------------------ golden check

async function goldenCheck(golden) {
  if (!golden.inputs) {
    $('golden-status').textContent = 'no golden data in this model';
    $('golden-status').dataset.state = 'none';
    return { state: 'none' };
  }
  const [n] = golden.input_shape;
  const outputs = await runLogits(state.session, golden.inputs, n);
  const expected = golden.outputs;
  let maxDiff = 0;
  let bad = 0;
  const perRow = expected.length / n;
  const badRows = new Set();
  for (let i = 0; i < expected.length; i += 1) {
    const diff = Math.abs(outputs[i] - expected[i]);
    maxDiff = Math.max(maxDiff, diff);
    if (!(diff <= golden.atol + golden.rtol * Math.abs(expected[i])) || outputs.length !== expected.length) {
      bad += 1;
      badRows.add(Math.floor(i / perRow));
    }
  }
  const passed = bad === 0 && outputs.length === expected.length;
  $('golden-status').textContent = passed ? 'pass' : 'FAIL';
  $('golden-status').dataset.state = passed ? 'pass' : 'fail';
  $('golden-detail').textContent =
    `${n - badRows.size}/${n} inputs within atol ${golden.atol}, rtol ${golden.rtol}; ` +
    `max |page − stored| = ${maxDiff.toExponential(2)}`;
  return { state: passed ? 'pass' : 'fail', maxDiff, inputs: n, failedInputs: badRows.size };
}

// ------------------------------------------------------------------------------------------ timings

function showTiming(which, { bytes, createMs, latencyMs, note }) {
  const row = $(`row-${which}`);
  row.querySelector('.bytes').textContent = fmtBytes(bytes);
  if (createMs !== undefined) row.querySelector('.create').textContent = `${fmtMs(createMs)}${note || ''}`;
  if (latencyMs !== undefined) row.querySelector('.latency').textContent = fmtMs(latencyMs);
}

/**
 * Time both files the same way, interleaved so that a busy machine slows both alike: `sessions` session
 * creations of each (after one warm-up each: the first creation in a page also starts WebAssembly), then
 * `rounds` rounds of `loops` batch-1 runs on each file's last session. Reports medians and the medians of
 * the per-round compact/expanded ratios.
 */
async function measure({ sessions = 7, rounds = 100, loops = 10 } = {}) {
  const m = state.manifest;
  const files = { compact: m.model, expanded: m.expanded };
  const names = Object.keys(files);
  const downloads = {};
  for (const which of names) downloads[which] = await download(files[which]);
  for (const which of names) await (await createSession(downloads[which].bytes)).session.release();
  const creates = { compact: [], expanded: [] };
  const sessionsKept = {};
  for (let i = 0; i < sessions; i += 1) {
    for (const which of i % 2 ? [...names].reverse() : names) {
      const { session, ms } = await createSession(downloads[which].bytes);
      creates[which].push(ms);
      if (sessionsKept[which]) await sessionsKept[which].release();
      sessionsKept[which] = session;
    }
  }
  const probe = state.samples.length ? state.samples[0].values : new Array(m.input_shape.reduce((a, b) => a * b)).fill(0);
  const latencies = { compact: [], expanded: [] };
  const latencyRatios = [];
  for (const which of names) await batch1Latency(sessionsKept[which], probe, loops);
  for (let r = 0; r < rounds; r += 1) {
    for (const which of r % 2 ? [...names].reverse() : names) {
      latencies[which].push(await batch1Latency(sessionsKept[which], probe, loops));
    }
    latencyRatios.push(latencies.compact[r] / latencies.expanded[r]);
  }
  for (const which of names) await sessionsKept[which].release();
  const result = { sessions, rounds, loops };
  for (const which of names) {
    result[which] = {
      file: files[which],
      bytes: downloads[which].bytes.byteLength,
      create_ms: creates[which],
      create_median_ms: median(creates[which]),
      latency_median_ms: median(latencies[which]),
    };
    showTiming(which, {
      bytes: result[which].bytes,
      createMs: result[which].create_median_ms,
      latencyMs: result[which].latency_median_ms,
    });
  }
  result.ratios = {
    bytes: result.compact.bytes / result.expanded.bytes,
    create: result.compact.create_median_ms / result.expanded.create_median_ms,
    latency: median(latencyRatios),
  };
  $('timing-note').textContent =
    `medians of ${sessions} session creations and of ${rounds} rounds of ${loops} batch-1 runs, interleaved. ` +
    `compact/expanded: bytes ${result.ratios.bytes.toFixed(3)}, creation ${result.ratios.create.toFixed(1)}×, ` +
    `inference ${result.ratios.latency.toFixed(2)}×`;
  return result;
}

// ------------------------------------------------------------------------------------------ start-up

async function start() {
  $('ort-version').textContent = ort.env.versions?.web ?? '';
  const [manifest, golden, samples] = await Promise.all([
    fetchJson('manifest.json'),
    fetchJson('golden.json'),
    fetchJson('samples.json'),
  ]);
  state.manifest = manifest;
  state.samples = samples.samples;
  $('model-title').textContent = manifest.title;
  setUpPad();
  setUpSamples();
  // ?model=expanded loads the dense file instead: compare both files' cold start in fresh tabs.
  const which = new URLSearchParams(location.search).get('model') === 'expanded' ? 'expanded' : 'compact';
  const other = which === 'compact' ? 'expanded' : 'compact';
  const file = which === 'compact' ? manifest.model : manifest.expanded;
  showTiming(other, { bytes: which === 'compact' ? manifest.expanded_bytes : manifest.model_bytes });
  $('runtime-bytes').textContent = fmtBytes(manifest.runtime_bytes);
  $('switch-model').href = which === 'compact' ? '?model=expanded' : '?';
  $('switch-model').textContent = `open the ${other} file instead`;

  const { bytes, ms: downloadMs } = await download(file);
  const { session, ms: createMs } = await createSession(bytes);
  state.session = session;
  const probe = state.samples.length ? state.samples[0].values : null;
  const latencyMs = probe ? await batch1Latency(session, probe, 20) : undefined;
  showTiming(which, { bytes: bytes.byteLength, createMs, latencyMs, note: ' *' });
  $('timing-note').textContent =
    `* first session in this page: includes compiling the WebAssembly runtime (download took ${fmtMs(downloadMs)}). ` +
    '"Measure both" times later creations of both files.';
  state.timings.first = { which, downloadMs, createMs, latencyMs, bytes: bytes.byteLength };

  const goldenResult = await goldenCheck(golden);
  $('measure').disabled = false;
  $('measure').addEventListener('click', async () => {
    $('measure').disabled = true;
    try {
      await measure();
    } finally {
      $('measure').disabled = false;
    }
  });
  setStatus(
    `ready: ${file} (${fmtBytes(bytes.byteLength)} bytes) ` +
      `${which === 'compact' ? 'decompressed into a session' : 'loaded into a session'} in ${fmtMs(createMs)} ` +
      '(first session: includes compiling WebAssembly)',
    'ready',
  );
  return { golden: goldenResult, first: state.timings.first };
}

const ready = start().catch((error) => {
  setStatus(`error: ${error.message ?? error}`, 'error');
  throw error;
});

window.hashpackDemo = {
  ready,
  predict,
  selectSample,
  measure,
  padToInput,
  get input() {
    return state.input;
  },
};
