"""Deployment costs at real size: ResNet-18 and MobileNetV2 (torchvision definitions) at 224×224.

Random init (costs do not depend on training), every Linear/Conv2d hashed at 1/8, one thread for
ONNX Runtime and LiteRT. Each figure is a ratio measured in this run next to its absolute values:

- sizes: dense fp32 ÷ .hpk, golden bytes, dense ÷ compact ONNX / once TFLite;
- ONNX Runtime session creation (a fresh child process per load, so each is a first load: file
  cache warm, nothing else; the best of 2-5 loads, the least disturbed by the machine's other
  work), compact and inline ÷ expanded, and the extra ns per virtual weight; the app-side path
  (``decoded_session`` on the compact file, also with ``HASHPACK_DECODE_THREADS=2``) and the
  ``--weights external`` export with its weights decoded by numpy (``external_session``) or by
  hashpack-java (``DumpOnnxWeights``: the JVM's decode time, then ORT fed the arrays, as the
  Android app does); peak RSS of those children; batch-1 latency compact ÷ expanded;
- LiteRT (XNNPACK, the default delegate): interpreter creation, first invoke (``once``
  decompresses there: ns per virtual weight), steady batch-1 latency once / inline /
  materialized ÷ expanded; ``materialize()`` time; ``materialize_from_hpk`` (the template filled
  from the .hpk's decoded params) in Python and in hashpack-java (read, then decode and fill, by
  thread count: ``MaterializeFromHpkBenchmark``, the Android app's path; needs a JDK,
  ``--no-java`` skips it);
- numpy runtime: read + validate, then decoding every weight, ns per virtual weight;
- ``hashpack profile`` with its defaults: wall time (ResNet-18 only; ``--no-profile`` skips it).

    python benchmarks/scale.py                 # both models, ~4 minutes on 2 quiet cores; writes scale_results.json
    python benchmarks/scale.py --models resnet18 --json

The machine these numbers come from is shared: the load average is printed next to them. Compare
ratios within one run, not absolute times across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

CHILD_LOADS = {
    "compact": 3,
    "inline": 2,
    "expanded": 5,
    "decoded": 5,
    "external": 5,
}  # fresh processes per ORT path
JAVA_DIR = Path(__file__).resolve().parent.parent / "android_demo" / "hashpack-java"
STEADY_RUNS = 20  # batch-1 runs per mode, interleaved in rounds
ROUNDS = 5
SLOW_RUNS = 4  # for modes that decompress on every run (LiteRT inline)
MODELS = ("resnet18", "mobilenet_v2")
JAVA_DIR = Path(__file__).resolve().parent.parent / "android_demo" / "hashpack-java"
JAVA_THREADS = "1,2"  # threads of the Java materialize_from_hpk figure


def build_model(name: str) -> Any:
    """The torchvision model, compressed (hashed, 1/8, seed 0), in eval mode."""
    import torch
    from torch import nn

    import hashpack
    from hashpack.torchvision_compat import torchvision_models

    torch.manual_seed(0)
    model = getattr(torchvision_models(), name)(weights=None)
    if name == "mobilenet_v2":
        # torchvision's forward calls F.adaptive_avg_pool2d; the same layers as a Sequential with the
        # module form, which the packer captures. Weights and arithmetic are unchanged.
        model = nn.Sequential(model.features, nn.AdaptiveAvgPool2d(1), nn.Flatten(1), model.classifier)
    hashpack.compress(model, compression=1 / 8, seed=0)
    return model.eval()


def peak_rss() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def child(kind: str, path: str) -> None:
    """One fresh load (timed) and one batch-1 run; prints seconds and peak RSS as JSON."""
    if kind in ("onnx", "onnx-decoded", "onnx-external", "onnx-external-java"):
        import onnx  # noqa: F401  (imported before the clock starts, like onnxruntime)
        import onnxruntime as ort

        from hashpack.exporter.onnx.external import decoded_session
        from hashpack.exporter.onnx.external_weights import external_session

        imports = peak_rss()
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        start = time.perf_counter()
        if kind == "onnx":
            session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        elif kind == "onnx-decoded":  # the app-side path: decode the compact file's weights, hand them to ORT
            session = decoded_session(path, options)
        elif kind == "onnx-external":  # PATH is "ONNX:HPK": numpy decodes the .hpk's params
            onnx_path, hpk_path = path.split(os.pathsep)
            session = external_session(onnx_path, hpk_path, options)
        else:  # "ONNX:DIR": the arrays hashpack-java wrote (DumpOnnxWeights), read and handed to ORT
            onnx_path, dump = path.split(os.pathsep)
            index = json.loads((Path(dump) / "index.json").read_text())["initializers"]
            names = [item["name"] for item in index]
            arrays = [np.fromfile(Path(dump) / i["file"], "<f4").reshape(i["shape"]) for i in index]
            options.add_external_initializers(names, [ort.OrtValue.ortvalue_from_numpy(a) for a in arrays])
            session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
        load_s = time.perf_counter() - start
        shape = [1 if not isinstance(d, int) else d for d in session.get_inputs()[0].shape]
        session.run(None, {session.get_inputs()[0].name: np.zeros(shape, np.float32)})
    else:
        raise ValueError(kind)
    print(json.dumps({"load_s": load_s, "imports": imports, "peak": peak_rss()}))


def run_children(
    kind: str, path: Path | str, loads_wanted: int, env: dict[str, str] | None = None
) -> dict[str, float]:
    """Best (least disturbed) and median load time of ``loads_wanted`` fresh processes, and peak RSS."""
    loads, peaks = [], []
    for _ in range(loads_wanted):
        out = subprocess.run(
            [sys.executable, __file__, "--child", kind, str(path)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, **(env or {})},
        )
        row = json.loads(out.stdout.strip().splitlines()[-1])
        loads.append(row["load_s"])
        peaks.append(row["peak"] - row["imports"])
    return {
        "load_s": min(loads),
        "median_load_s": statistics.median(loads),
        "loads": len(loads),
        "rss_bytes": max(peaks),
    }


def ort_session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def interleaved(runners: dict[str, Any], runs: dict[str, int]) -> dict[str, float]:
    """Median ms per call of each runner, calls interleaved in ROUNDS so load drift hits all alike."""
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(ROUNDS):
        for name, run in runners.items():
            for _ in range(max(1, runs[name] // ROUNDS)):
                start = time.perf_counter()
                run()
                samples[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(values) for name, values in samples.items()}


def external_app_paths(hpk_path: Path, onnx_path: Path, java: bool) -> dict[str, Any]:
    """The ``--weights external`` export loaded with numpy-decoded and (``java``) Java-decoded weights."""
    from hashpack.exporter.onnx import export_onnx

    export_onnx(hpk_path, onnx_path, weights="external")
    r: dict[str, Any] = {"bytes": onnx_path.stat().st_size}
    r["numpy"] = run_children("onnx-external", f"{onnx_path}{os.pathsep}{hpk_path}", CHILD_LOADS["external"])
    if not java:
        return {"external": r}
    dump = onnx_path.with_suffix(".java")
    dump.mkdir(exist_ok=True)
    classes = str(JAVA_DIR / "build" / "classes")
    command = ["java", "-XX:+UseSerialGC", "-cp", classes, "org.hashpack.DumpOnnxWeights", "--repeats", "5"]
    command += [str(hpk_path), str(onnx_path), str(dump)]
    decode_s, warm_s = [], []
    for _ in range(3):  # a fresh JVM each time: the first decode includes class loading and JIT warm-up
        out = subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=True,
        )
        report = out.stdout.strip().splitlines()[-1]
        decode_s.append(json.loads(report)["decode_seconds"])
        warm_s.append(json.loads(report)["warm_decode_seconds"])
    (dump / "index.json").write_text(report)
    r["java"] = {
        "decode_s": min(decode_s),
        "warm_decode_s": min(warm_s),
        **run_children("onnx-external-java", f"{onnx_path}{os.pathsep}{dump}", CHILD_LOADS["external"]),
    }
    return {"external": r}


def build_java() -> None:
    """Compile hashpack-java (fails here, before minutes of measuring, without a JDK)."""
    subprocess.run(["bash", str(JAVA_DIR / "build.sh")], check=True)


def java_from_hpk(hpk_path: Path, once_path: Path, out_path: Path) -> list[dict[str, float]]:
    """hashpack-java's read, then decode and fill (materializeFromHpk), one row per thread count."""
    result = subprocess.run(
        ["java", "-Xmx2g", "-cp", str(JAVA_DIR / "build" / "classes"),
         "org.hashpack.bench.MaterializeFromHpkBenchmark", str(hpk_path), str(once_path), JAVA_THREADS, "7",
         str(out_path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    rows = []
    for line in result.stdout.splitlines():
        if line.startswith("threads="):
            rows.append({key: float(value) for key, value in (part.split("=") for part in line.split())})
    return rows


def measure(name: str, directory: Path, profile: bool, java: bool = False) -> dict[str, Any]:
    import torch

    import hashpack
    from hashpack.exporter.onnx import export_onnx
    from hashpack.exporter.tflite import build_tflite
    from hashpack.exporter.tflite.materialize import materialize, materialize_from_hpk
    from hashpack.exporter.tflite.runner import make_interpreter
    from hashpack.runtime import load

    model = build_model(name)
    hpk_path = directory / f"{name}.hpk"
    hpk = hashpack.pack(model, torch.randn(1, 3, 224, 224), hpk_path)
    virtual = sum(p.numel for p in hpk.params.values())
    dense_bytes = 4 * virtual
    r: dict[str, Any] = {"model": name, "virtual_params": virtual, "dense_bytes": dense_bytes}
    r["hpk_bytes"] = hpk_path.stat().st_size
    r["golden_bytes"] = sum(int(hpk.tensors[t].nbytes) for t in hpk.golden_tensors)
    r["golden_samples"] = hpk.golden_count
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)

    # numpy runtime: load, then the first run decodes every weight
    start = time.perf_counter()
    runtime = load(hpk_path)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    _ = runtime.weights  # decoded on first use, once
    decode_s = time.perf_counter() - start
    start = time.perf_counter()
    runtime.run(x)
    r["numpy"] = {"load_s": load_s, "decode_s": decode_s, "first_run_s": time.perf_counter() - start}
    start = time.perf_counter()
    runtime.run(x)
    r["numpy"]["steady_s"] = time.perf_counter() - start
    del runtime

    # ONNX Runtime
    onnx_paths = {}
    for mode in ("compact", "inline", "expanded"):
        onnx_paths[mode] = directory / f"{name}.{mode}.onnx"
        export_onnx(hpk_path, onnx_paths[mode], weights=mode)
    r["onnx"] = {
        mode: {"bytes": p.stat().st_size, **run_children("onnx", p, CHILD_LOADS[mode])}
        for mode, p in onnx_paths.items()
    }
    r["onnx"]["decoded"] = {
        "bytes": onnx_paths["compact"].stat().st_size,
        **run_children("onnx-decoded", onnx_paths["compact"], CHILD_LOADS["decoded"]),
    }
    r["onnx"]["decoded_2_threads"] = run_children(
        "onnx-decoded", onnx_paths["compact"], CHILD_LOADS["decoded"], env={"HASHPACK_DECODE_THREADS": "2"}
    )
    r["onnx"].update(external_app_paths(hpk_path, directory / f"{name}.external.onnx", java))
    sessions = {mode: ort_session(onnx_paths[mode]) for mode in ("compact", "expanded")}
    feed_name = sessions["compact"].get_inputs()[0].name
    latency = interleaved(
        {mode: (lambda s=s: s.run(None, {feed_name: x})) for mode, s in sessions.items()},
        {"compact": STEADY_RUNS, "expanded": STEADY_RUNS},
    )
    for mode, ms in latency.items():
        r["onnx"][mode]["batch1_ms"] = ms
    del sessions

    # LiteRT
    files = {
        mode: build_tflite(hpk, mode, materializable=False).data for mode in ("once", "inline", "expanded")
    }
    files["once-materializable"] = build_tflite(hpk, "once").data  # the default once file
    start = time.perf_counter()
    materialized = materialize(files["once-materializable"], num_threads=1)
    materialize_s = time.perf_counter() - start
    r["tflite"] = {"materialize_s": materialize_s}
    start = time.perf_counter()  # the same template filled from the .hpk's params decoded by numpy
    from_hpk = materialize_from_hpk(files["once-materializable"], load(hpk_path).weights)
    r["tflite"]["materialize_from_hpk_s"] = time.perf_counter() - start
    r["tflite"]["from_hpk_identical"] = from_hpk == materialized
    if java:  # the same in hashpack-java, from the files on disk (what the Android app does)
        once_path = directory / f"{name}.once.tflite"
        once_path.write_bytes(files["once-materializable"])
        java_out = directory / f"{name}.java-materialized.tflite"
        r["tflite"]["java_from_hpk"] = java_from_hpk(hpk_path, once_path, java_out)
        r["tflite"]["java_from_hpk_identical"] = java_out.read_bytes() == from_hpk
        java_out.unlink()
    del from_hpk
    runners = {}
    for mode, data in (*files.items(), ("materialized", materialized)):
        start = time.perf_counter()
        interpreter = make_interpreter(data, num_threads=1)
        create_s = time.perf_counter() - start
        index = interpreter.get_input_details()[0]["index"]
        interpreter.set_tensor(index, x)
        start = time.perf_counter()
        interpreter.invoke()
        first_s = time.perf_counter() - start
        r["tflite"][mode] = {"bytes": len(data), "create_s": create_s, "first_invoke_s": first_s}
        runners[mode] = interpreter.invoke  # the input tensor stays set between invokes
    latency = interleaved(runners, {m: SLOW_RUNS if m == "inline" else STEADY_RUNS for m in runners})
    for mode, ms in latency.items():
        r["tflite"][mode]["batch1_ms"] = ms
    del runners

    if profile:
        start = time.perf_counter()
        hashpack_cli = Path(sys.executable).with_name("hashpack")
        subprocess.run(
            [str(hashpack_cli), "profile", str(hpk_path), "--json"], capture_output=True, check=True
        )
        r["profile_s"] = time.perf_counter() - start
    return r


def _mb(n: float) -> str:
    return f"{n / 1e6:.2f} MB"


def table(results: list[dict[str, Any]]) -> str:
    """The issue's table: ratio first, absolute values in brackets."""
    head = (
        "| | "
        + " | ".join(f"{r['model']} ({r['virtual_params'] / 1e6:.2f} M weights)" for r in results)
        + " |"
    )
    lines = [head, "|---" * (len(results) + 1) + "|"]

    def row(label: str, cell: Any) -> None:
        try:
            cells = [cell(r) for r in results]
        except KeyError:  # a part this run skipped (--no-java)
            return
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    def ns(seconds: float, r: dict[str, Any]) -> str:
        return f"{seconds * 1e9 / r['virtual_params']:.0f} ns/weight"

    row(
        "dense fp32 ÷ .hpk",
        lambda r: (
            f"**{r['dense_bytes'] / r['hpk_bytes']:.2f}×** ({_mb(r['dense_bytes'])} → {_mb(r['hpk_bytes'])})"
        ),
    )
    row(
        "golden bytes in the .hpk",
        lambda r: (
            f"{r['golden_bytes']:,} B ({r['golden_samples']} generated samples; {100 * r['golden_bytes'] / r['hpk_bytes']:.2f} % of the file)"
        ),
    )
    row(
        "dense ÷ compact ONNX / once TFLite (default, materializable)",
        lambda r: (
            f"{r['dense_bytes'] / r['onnx']['compact']['bytes']:.2f}× / "
            f"{r['dense_bytes'] / r['tflite']['once-materializable']['bytes']:.2f}×"
        ),
    )
    row(
        "ORT session creation, compact ÷ expanded (best fresh process)",
        lambda r: (
            f"**{r['onnx']['compact']['load_s'] / r['onnx']['expanded']['load_s']:.1f}×** ({r['onnx']['compact']['load_s']:.2f} vs "
            f"{r['onnx']['expanded']['load_s']:.3f} s; +{ns(r['onnx']['compact']['load_s'] - r['onnx']['expanded']['load_s'], r)}); "
            f"inline {r['onnx']['inline']['load_s'] / r['onnx']['expanded']['load_s']:.1f}× ({r['onnx']['inline']['load_s']:.2f} s)"
        ),
    )
    row(
        "ORT app-side decode (`decoded_session`, compact file) ÷ expanded",
        lambda r: (
            f"**{r['onnx']['decoded']['load_s'] / r['onnx']['expanded']['load_s']:.2f}×** ({r['onnx']['decoded']['load_s']:.3f} vs "
            f"{r['onnx']['expanded']['load_s']:.3f} s; {(r['onnx']['decoded']['load_s'] - r['onnx']['expanded']['load_s']) * 1e9 / r['virtual_params']:+.0f} ns per weight vs expanded); "
            f"peak RSS {r['onnx']['decoded']['rss_bytes'] / 2**20:.0f} MiB = {r['onnx']['decoded']['rss_bytes'] / r['onnx']['expanded']['rss_bytes']:.2f}× expanded"
        ),
    )
    row(
        "… with `HASHPACK_DECODE_THREADS=2`",
        lambda r: (
            f"{r['onnx']['decoded_2_threads']['load_s']:.3f} s ({(r['onnx']['decoded_2_threads']['load_s'] - r['onnx']['expanded']['load_s']) * 1e9 / r['virtual_params']:+.0f} ns per weight vs expanded; "
            f"1 thread {(r['onnx']['decoded']['load_s'] - r['onnx']['expanded']['load_s']) * 1e9 / r['virtual_params']:+.0f}); "
            f"peak RSS {r['onnx']['decoded_2_threads']['rss_bytes'] / r['onnx']['expanded']['rss_bytes']:.2f}× expanded"
        ),
    )
    row(
        "ORT `--weights external` (graph + .hpk), numpy decode (`external_session`) ÷ expanded",
        lambda r: (
            f"**{r['onnx']['external']['numpy']['load_s'] / r['onnx']['expanded']['load_s']:.2f}×** ({r['onnx']['external']['numpy']['load_s']:.3f} s; "
            f"{(r['onnx']['external']['numpy']['load_s'] - r['onnx']['expanded']['load_s']) * 1e9 / r['virtual_params']:+.0f} ns per weight vs expanded); "
            f"peak RSS {r['onnx']['external']['numpy']['rss_bytes'] / 2**20:.0f} MiB = {r['onnx']['external']['numpy']['rss_bytes'] / r['onnx']['expanded']['rss_bytes']:.2f}× expanded; "
            f"graph {r['onnx']['external']['bytes'] / 1e3:.1f} KB + .hpk"
        ),
    )
    row(
        "ORT `--weights external`, hashpack-java decode (first in a fresh JVM; warmed up) + ORT fed the arrays ÷ expanded",
        lambda r: (
            f"Java {r['onnx']['external']['java']['decode_s']:.3f} s ({ns(r['onnx']['external']['java']['decode_s'], r)}; "
            f"warm {r['onnx']['external']['java']['warm_decode_s']:.3f} s, {ns(r['onnx']['external']['java']['warm_decode_s'], r)}) + ORT "
            f"{r['onnx']['external']['java']['load_s']:.3f} s = **{(r['onnx']['external']['java']['decode_s'] + r['onnx']['external']['java']['load_s']) / r['onnx']['expanded']['load_s']:.2f}×** "
            f"({(r['onnx']['external']['java']['decode_s'] + r['onnx']['external']['java']['load_s'] - r['onnx']['expanded']['load_s']) * 1e9 / r['virtual_params']:+.0f} ns per weight vs expanded); "
            f"warm {(r['onnx']['external']['java']['warm_decode_s'] + r['onnx']['external']['java']['load_s'] - r['onnx']['expanded']['load_s']) * 1e9 / r['virtual_params']:+.0f} ns; "
            f"ORT's peak RSS {r['onnx']['external']['java']['rss_bytes'] / r['onnx']['expanded']['rss_bytes']:.2f}× expanded"
        ),
    )
    row(
        "ORT peak RSS (model's own), compact / inline / expanded",
        lambda r: (
            f"{r['onnx']['compact']['rss_bytes'] / 2**20:.0f} / {r['onnx']['inline']['rss_bytes'] / 2**20:.0f} / "
            f"{r['onnx']['expanded']['rss_bytes'] / 2**20:.0f} MiB (compact {r['onnx']['compact']['rss_bytes'] / r['onnx']['expanded']['rss_bytes']:.1f}× expanded)"
        ),
    )
    row(
        "ORT batch-1 latency compact ÷ expanded",
        lambda r: (
            f"{r['onnx']['compact']['batch1_ms'] / r['onnx']['expanded']['batch1_ms']:.2f} ({r['onnx']['compact']['batch1_ms']:.1f} vs {r['onnx']['expanded']['batch1_ms']:.1f} ms)"
        ),
    )
    row(
        "TFLite once file: materializable (default) ÷ plain",
        lambda r: (
            f"{r['tflite']['once-materializable']['bytes'] / r['tflite']['once']['bytes']:.3f} "
            f"(+{(r['tflite']['once-materializable']['bytes'] - r['tflite']['once']['bytes']) / 1e3:.1f} KB)"
        ),
    )
    row(
        "LiteRT steady batch-1 ÷ expanded (XNNPACK): once / materialized / inline",
        lambda r: (
            f"**{r['tflite']['once']['batch1_ms'] / r['tflite']['expanded']['batch1_ms']:.2f}×** / "
            f"{r['tflite']['materialized']['batch1_ms'] / r['tflite']['expanded']['batch1_ms']:.2f}× / "
            f"{r['tflite']['inline']['batch1_ms'] / r['tflite']['expanded']['batch1_ms']:.1f}× (expanded {r['tflite']['expanded']['batch1_ms']:.1f} ms)"
        ),
    )
    row(
        "LiteRT first invoke, once (decompression)",
        lambda r: (
            f"{r['tflite']['once']['first_invoke_s'] * 1e3:.0f} ms ({ns(r['tflite']['once']['first_invoke_s'], r)}; "
            f"expanded {r['tflite']['expanded']['first_invoke_s'] * 1e3:.0f} ms)"
        ),
    )
    row(
        "`materialize()` (LiteRT runs the init) / `materialize_from_hpk()` (numpy decode), then steady ÷ expanded",
        lambda r: (
            f"{r['tflite']['materialize_s']:.2f} s ({ns(r['tflite']['materialize_s'], r)}) / "
            f"{r['tflite']['materialize_from_hpk_s']:.2f} s ({ns(r['tflite']['materialize_from_hpk_s'], r)}; "
            f"{'same bytes' if r['tflite']['from_hpk_identical'] else 'bytes differ'}), then "
            f"{r['tflite']['materialized']['batch1_ms'] / r['tflite']['expanded']['batch1_ms']:.2f}×"
        ),
    )
    row(
        "hashpack-java `materializeFromHpk` (the app's path): read + decode and fill, by threads",
        lambda r: (
            "; ".join(
                f"{t['threads']:.0f} thread{'s' if t['threads'] > 1 else ''}: {t['total_ms'] / 1e3:.2f} s "
                f"(**{t['ns_per_weight']:.1f} ns/weight**; read {t['read_ms']:.0f} ms)"
                for t in r["tflite"]["java_from_hpk"]
            )
            + f" ({'same bytes as Python' if r['tflite']['java_from_hpk_identical'] else 'bytes differ from Python'})"
            if "java_from_hpk" in r["tflite"]
            else "—"
        ),
    )
    row(
        "numpy runtime: read + decode every weight",
        lambda r: (
            f"{r['numpy']['load_s']:.2f} + {r['numpy']['decode_s']:.2f} s ({ns(r['numpy']['decode_s'], r)}); "
            f"then {r['numpy']['steady_s']:.2f} s per batch-1 run"
        ),
    )
    row("`hashpack profile` with defaults", lambda r: f"{r['profile_s']:.0f} s" if "profile_s" in r else "—")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--no-profile", action="store_true", help="Do not time `hashpack profile`.")
    parser.add_argument("--json", action="store_true", help="Print the raw results instead of the table.")
    parser.add_argument(
        "--results",
        default=str(Path(__file__).with_name("scale_results.json")),
        help="Also write the raw results here (the README table's source); '' to skip.",
    )
    parser.add_argument(
        "--keep-dir", help="Keep the .hpk, .onnx and once .tflite files here (e.g. for ModelDecodeBenchmark)."
    )
    parser.add_argument(
        "--no-java", action="store_true", help="Skip the hashpack-java materializeFromHpk figure."
    )
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if not args.no_java:
        build_java()
    load_before = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(args.keep_dir) if args.keep_dir else Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        for index, name in enumerate(args.models.split(",")):
            results.append(
                measure(name, directory, profile=not args.no_profile and index == 0, java=not args.no_java)
            )
    environment = {
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "cpus": os.cpu_count(),
    }
    raw = json.dumps({"results": results, "environment": environment}, indent=1)
    if args.results:
        Path(args.results).write_text(raw + "\n")
    if args.json:
        print(raw)
        return
    print(table(results))
    print(
        f"\nload average before / after: {load_before[0]:.1f} / {environment['load_average_after'][0]:.1f} "
        f"on {environment['cpus']} CPUs (a shared machine: read absolute times as orders of magnitude)"
    )


if __name__ == "__main__":
    main()
