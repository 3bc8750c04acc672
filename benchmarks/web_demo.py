"""The web demo's model in the browser, in onnxruntime-node and in Python ONNX Runtime: compact vs expanded.

Model: the `hashpack demo` model (HashedNets LeNet-300-100 at 1/8 on scikit-learn's digits, 8×8 inputs,
50,610 virtual weights), trained here, or --hpk FILE. Its web demo is written with web_demo/build.py and
the same two files are timed in three runtimes, each with one thread and the same method:
- download bytes of model.onnx (compact: ai.hashpack ops, buckets only) and model.expanded.onnx (dense);
- session creation (where the compact file's weights are decompressed): --sessions creations from bytes
  in memory per repeat, after one warm-up each, the two files interleaved; median and best of all repeats;
- the first session a user gets: each file opened in a fresh browser (``?model=expanded`` for the dense
  one) or a fresh node/python process, --cold times, interleaved;
- batch-1 latency: --rounds rounds of --loops runs on each file's session, interleaved; the median per
  run, and the latency ratio as the median of per-round ratios (robust on a shared machine).
Runtimes: headless Debian Chromium with onnxruntime-web (WebAssembly; the page's own measure()),
onnxruntime-node, and Python onnxruntime. onnxruntime-node is a dev dependency of web_demo/package.json:
`make web-demo-bench` installs it and runs this script.
Usage: python benchmarks/web_demo.py [--hpk F] [--out DIR] [--sessions 9] [--rounds 200] [--loops 10] [--repeat 3] [--cold 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from web_demo_tools import ROOT, chromium, load_builder, static_server

NODE_SCRIPT = r"""
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');
const [dir, sessions, rounds, loops] = process.argv.slice(1).map((v, i) => (i ? Number(v) : v));
const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json')));
const probe = JSON.parse(fs.readFileSync(path.join(dir, 'samples.json'))).samples[0].values;
const options = { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' };
const now = () => Number(process.hrtime.bigint()) / 1e6;
const median = (v) => { const s = [...v].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
async function create(bytes) { const t = now(); const s = await ort.InferenceSession.create(bytes, options); return [s, now() - t]; }
async function latency(session, loops) {
  const [c, h, w] = manifest.input_shape;
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', Float32Array.from(probe), [1, c, h, w]) };
  for (let i = 0; i < 5; i += 1) await session.run(feeds);
  const t = now();
  for (let i = 0; i < loops; i += 1) await session.run(feeds);
  return (now() - t) / loops;
}
(async () => {
  const files = { compact: manifest.model, expanded: manifest.expanded };
  const names = Object.keys(files);
  const bytes = {};
  for (const n of names) bytes[n] = fs.readFileSync(path.join(dir, files[n]));
  for (const n of names) await (await create(bytes[n]))[0].release();
  const creates = { compact: [], expanded: [] };
  const kept = {};
  for (let i = 0; i < sessions; i += 1) {
    for (const n of i % 2 ? [...names].reverse() : names) {
      const [s, ms] = await create(bytes[n]);
      creates[n].push(ms);
      if (kept[n]) await kept[n].release();
      kept[n] = s;
    }
  }
  const lat = { compact: [], expanded: [] };
  const ratios = [];
  for (const n of names) await latency(kept[n], loops);
  for (let r = 0; r < rounds; r += 1) {
    for (const n of r % 2 ? [...names].reverse() : names) lat[n].push(await latency(kept[n], loops));
    ratios.push(lat.compact[r] / lat.expanded[r]);
  }
  const out = { sessions, rounds, loops, version: ort.env.versions.node };
  for (const n of names) out[n] = { bytes: bytes[n].length, create_ms: creates[n], create_median_ms: median(creates[n]), latency_median_ms: median(lat[n]) };
  out.ratios = { bytes: out.compact.bytes / out.expanded.bytes, create: out.compact.create_median_ms / out.expanded.create_median_ms, latency: median(ratios) };
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(`onnxruntime-node: ${e.message}`); process.exit(1); });
"""


def browser_figures(site: Path, sessions: int, rounds: int, loops: int) -> dict[str, Any]:
    """The page's first session (includes starting WebAssembly) and its measure() in headless Chromium."""
    with static_server(site, isolated=True) as base, chromium() as browser:
        page = browser.new_page()
        page.goto(base + "index.html")
        first = page.evaluate("window.hashpackDemo.ready")
        if not page.evaluate("crossOriginIsolated"):
            raise SystemExit("the page is not cross-origin isolated: performance.now() would tick in 100 µs")
        if first["golden"]["state"] != "pass":
            raise SystemExit(f"golden check in the browser: {first['golden']}")
        result = page.evaluate(
            "(o) => window.hashpackDemo.measure(o)", {"sessions": sessions, "rounds": rounds, "loops": loops}
        )
        result["version"] = page.evaluate("ort.env.versions.web")
        result["first_session_ms"] = first["first"]["createMs"]
    return result


def node_figures(site: Path, sessions: int, rounds: int, loops: int) -> dict[str, Any]:
    if not (ROOT / "web_demo" / "node_modules" / "onnxruntime-node").is_dir():
        raise SystemExit(
            "onnxruntime-node is not installed: run `make web-demo-bench` (npm ci with dev deps)"
        )
    completed = subprocess.run(
        ["node", "-e", NODE_SCRIPT, str(site.resolve()), str(sessions), str(rounds), str(loops)],
        cwd=ROOT / "web_demo",
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(completed.stderr.strip() or "onnxruntime-node failed")
    return json.loads(completed.stdout)


def python_figures(site: Path, sessions: int, rounds: int, loops: int) -> dict[str, Any]:
    manifest = json.loads((site / "manifest.json").read_text())
    probe = json.loads((site / "samples.json").read_text())["samples"][0]["values"]
    x = np.asarray(probe, dtype=np.float32).reshape(1, *manifest["input_shape"])
    files = {"compact": manifest["model"], "expanded": manifest["expanded"]}
    data = {name: (site / file).read_bytes() for name, file in files.items()}
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1

    def create(name: str) -> tuple[ort.InferenceSession, float]:
        start = time.perf_counter()
        session = ort.InferenceSession(data[name], options, providers=["CPUExecutionProvider"])
        return session, (time.perf_counter() - start) * 1e3

    def latency(session: ort.InferenceSession) -> float:
        feeds = {session.get_inputs()[0].name: x}
        for _ in range(5):
            session.run(None, feeds)
        start = time.perf_counter()
        for _ in range(loops):
            session.run(None, feeds)
        return (time.perf_counter() - start) * 1e3 / loops

    names = list(files)
    for name in names:
        create(name)
    creates: dict[str, list[float]] = {name: [] for name in names}
    kept: dict[str, ort.InferenceSession] = {}
    for i in range(sessions):
        for name in reversed(names) if i % 2 else names:
            kept[name], ms = create(name)
            creates[name].append(ms)
    for name in names:
        latency(kept[name])
    lat: dict[str, list[float]] = {name: [] for name in names}
    ratios = []
    for r in range(rounds):
        for name in reversed(names) if r % 2 else names:
            lat[name].append(latency(kept[name]))
        ratios.append(lat["compact"][r] / lat["expanded"][r])
    result: dict[str, Any] = {
        "sessions": sessions,
        "rounds": rounds,
        "loops": loops,
        "version": ort.__version__,
    }
    for name in names:
        result[name] = {
            "bytes": len(data[name]),
            "create_ms": creates[name],
            "create_median_ms": statistics.median(creates[name]),
            "latency_median_ms": statistics.median(lat[name]),
        }
    result["ratios"] = {
        "bytes": result["compact"]["bytes"] / result["expanded"]["bytes"],
        "create": result["compact"]["create_median_ms"] / result["expanded"]["create_median_ms"],
        "latency": statistics.median(ratios),
    }
    return result


NODE_COLD = r"""
const t0 = Number(process.hrtime.bigint());
const ort = require('onnxruntime-node');
const bytes = require('fs').readFileSync(process.argv[1]);
const t = Number(process.hrtime.bigint());
ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 })
  .then(() => console.log(JSON.stringify({ create_ms: (Number(process.hrtime.bigint()) - t) / 1e6, import_ms: (t - t0) / 1e6 })));
"""
PYTHON_COLD = r"""
import json, sys, time
t0 = time.perf_counter()
import onnxruntime as ort
data = open(sys.argv[1], "rb").read()
options = ort.SessionOptions()
options.intra_op_num_threads = options.inter_op_num_threads = 1
t = time.perf_counter()
ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
print(json.dumps({"create_ms": (time.perf_counter() - t) * 1e3, "import_ms": (t - t0) * 1e3}))
"""


def cold_first_sessions(site: Path, pairs: int) -> dict[str, dict[str, list[float]]]:
    """The first session a user gets: each file in a fresh browser / process, ``pairs`` times, interleaved.

    In the browser this includes compiling onnxruntime-web's WebAssembly, and the work runs in V8's
    baseline (Liftoff) code; later creations in the same page get faster as hot functions tier up.
    """
    manifest = json.loads((site / "manifest.json").read_text())
    files = {"compact": manifest["model"], "expanded": manifest["expanded"]}
    result: dict[str, dict[str, list[float]]] = {
        label: {"compact": [], "expanded": []} for label in ("browser", "node", "python")
    }
    for i in range(pairs):
        for which in reversed(list(files)) if i % 2 else list(files):
            with static_server(site) as base, chromium() as browser:
                page = browser.new_page()
                page.goto(base + "index.html" + ("?model=expanded" if which == "expanded" else ""))
                first = page.evaluate("window.hashpackDemo.ready")
                if first["golden"]["state"] != "pass" or first["first"]["which"] != which:
                    raise SystemExit(f"browser, {which} file: {first}")
                result["browser"][which].append(first["first"]["createMs"])
            path = str((site / files[which]).resolve())
            for label, command in (
                ("node", ["node", "-e", NODE_COLD, path]),
                ("python", [sys.executable, "-c", PYTHON_COLD, path]),
            ):
                done = subprocess.run(
                    command, cwd=ROOT / "web_demo", capture_output=True, text=True, check=False
                )
                if done.returncode != 0:
                    raise SystemExit(f"{label}: {done.stderr.strip()}")
                result[label][which].append(json.loads(done.stdout)["create_ms"])
    return result


def cold_table(cold: dict[str, dict[str, list[float]]]) -> str:
    lines = [
        "| first session in a fresh browser / process | compact: median (best) | expanded | ratio of medians |",
        "|---|---|---|---|",
    ]
    names = {
        "browser": "Chromium page (incl. WebAssembly compile)",
        "node": "onnxruntime-node",
        "python": "Python ORT",
    }
    for label, runs in cold.items():
        c, e = statistics.median(runs["compact"]), statistics.median(runs["expanded"])
        lines.append(
            f"| {names[label]} | {c:.0f} ({min(runs['compact']):.0f}) ms | {e:.0f} ({min(runs['expanded']):.0f}) ms "
            f"| {c / e:.2f} |"
        )
    return "\n".join(lines)


def _spread(values: list[float], fmt: str) -> str:
    """The median of the repeats, with their range when there are several."""
    middle = format(statistics.median(values), fmt)
    return middle if len(values) == 1 else f"{middle} ({format(min(values), fmt)}–{format(max(values), fmt)})"


def table(repeats: list[dict[str, dict[str, Any]]]) -> str:
    """Markdown, per runtime. Session creation: every creation of every repeat pooled, median and best
    (a loaded machine adds 20-70 ms stalls to some creations; the best is the uninterrupted cost).
    Batch-1 latency: the median over repeats of each repeat's median, range in brackets."""
    lines = [
        "| runtime (1 thread) | session creation compact: median (best) | expanded | ratio | "
        "batch-1 latency compact | expanded | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for label in repeats[0]:
        runs = [repeat[label] for repeat in repeats]
        pooled = {
            name: [ms for run in runs for ms in run[name]["create_ms"]] for name in ("compact", "expanded")
        }
        median = {name: statistics.median(values) for name, values in pooled.items()}
        best = {name: min(values) for name, values in pooled.items()}

        def column(pick: Any, fmt: str, runs: list[dict[str, Any]] = runs) -> str:
            return _spread([pick(run) for run in runs], fmt)

        lines.append(
            f"| {label} {runs[0]['version']} "
            f"| {median['compact']:.0f} ({best['compact']:.0f}) ms "
            f"| {median['expanded']:.2f} ({best['expanded']:.2f}) ms "
            f"| {median['compact'] / median['expanded']:.0f}× ({best['compact'] / best['expanded']:.0f}×) "
            f"| {column(lambda r: r['compact']['latency_median_ms'] * 1e3, '.1f')} µs "
            f"| {column(lambda r: r['expanded']['latency_median_ms'] * 1e3, '.1f')} µs "
            f"| {column(lambda r: r['ratios']['latency'], '.2f')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--hpk", type=Path, default=None, help="model (default: train the `hashpack demo` model)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "web-demo-bench")
    parser.add_argument("--sessions", type=int, default=9)
    # Short blocks, many rounds: a rare 10-40 ms pause (GC, a busy shared machine) then spoils few blocks.
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--loops", type=int, default=10)
    parser.add_argument(
        "--repeat", type=int, default=3, help="whole measurements (fresh browser/process each)"
    )
    parser.add_argument("--cold", type=int, default=5, help="fresh browser/process first sessions per file")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    hpk = args.hpk
    if hpk is None:
        from hashpack.workflow import run_demo

        hpk = Path(run_demo(args.out / "model")["path"])
    site = args.out / "site"
    manifest = load_builder().write_web_demo(hpk, site)
    runs = (args.sessions, args.rounds, args.loops)
    repeats = [
        {
            "Chromium, onnxruntime-web": browser_figures(site, *runs),
            "onnxruntime-node": node_figures(site, *runs),
            "Python onnxruntime": python_figures(site, *runs),
        }
        for _ in range(args.repeat)
    ]
    cold = cold_first_sessions(site, args.cold)
    report = {"model": manifest["title"], "manifest": manifest, "repeats": repeats, "cold": cold}
    (args.out / "results.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return
    print(f"model: {manifest['title']}")
    print(
        f"download: compact {manifest['model_bytes']:,} bytes, expanded {manifest['expanded_bytes']:,} bytes "
        f"(ratio {manifest['model_bytes'] / manifest['expanded_bytes']:.3f}); .hpk {manifest['hpk_bytes']:,} bytes; "
        f"onnxruntime-web runtime files {manifest['runtime_bytes']:,} bytes"
    )
    print(f"{args.cold} first sessions per file, each in a fresh browser / process, interleaved:")
    print(cold_table(cold))
    print(
        f"{args.repeat} repeats of {args.sessions} session creations (pooled: median, best) and of "
        f"{args.rounds} blocks of {args.loops} batch-1 runs (median per repeat; median and range over repeats); "
        "ratio = compact / expanded"
    )
    print(table(repeats))


if __name__ == "__main__":
    main()
