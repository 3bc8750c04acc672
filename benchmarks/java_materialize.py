"""hashpack-java ``materializeFromHpk`` at real size, alone: ResNet-18 and MobileNetV2.

The Android app's path (read the .hpk and the once file, decode every param, fill the template),
timed by ``org.hashpack.bench.MaterializeFromHpkBenchmark`` as ``scale.py`` runs it, without the
rest of ``scale.py`` (ONNX Runtime, LiteRT). The files are built as ``scale.py`` builds them
(torchvision definitions, random init, every Linear/Conv2d hashed at 1/8, seed 0), and each run's
bytes are checked against Python's ``materialize_from_hpk``.

Each round starts one fresh JVM per build and model, builds interleaved so that the machine's
other work hits them alike; the figure is the median over rounds of the benchmark's own median.
``--baseline REV`` also compiles hashpack-java as of git revision REV (with this tree's benchmark
class) and measures it in the same rounds: a before/after on the same machine state.

    OMP_NUM_THREADS=1 python benchmarks/java_materialize.py                  # ~1 minute
    python benchmarks/java_materialize.py --baseline main --rounds 5 --json

The machine these numbers come from is shared: the load average is printed next to them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import JAVA_DIR, MODELS, build_java, build_model

REPO = JAVA_DIR.parent.parent


def compile_revision(revision: str, directory: Path) -> Path:
    """hashpack-java's main sources as of ``revision``, compiled into ``directory/classes``."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", revision, "android_demo/hashpack-java/src/main/java"],
        capture_output=True, check=True,
    )  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive.stdout, check=True)
    bench = Path(
        "android_demo/hashpack-java/src/main/java/org/hashpack/bench/MaterializeFromHpkBenchmark.java"
    )
    (directory / bench).write_bytes((REPO / bench).read_bytes())  # both builds timed by the same benchmark
    sources = sorted(str(p) for p in (directory / "android_demo").rglob("*.java"))
    classes = directory / "classes"
    classes.mkdir()
    subprocess.run(
        ["javac", "--release", "8", "-encoding", "UTF-8", "-nowarn", "-d", str(classes), *sources], check=True
    )
    return classes


def build_files(name: str, directory: Path) -> tuple[Path, Path, bytes]:
    """The model's .hpk, its materializable once .tflite, and Python's materialize_from_hpk bytes."""
    import torch

    import hashpack
    from hashpack.exporter.tflite import build_tflite
    from hashpack.exporter.tflite.materialize import materialize_from_hpk
    from hashpack.runtime import load

    hpk_path = directory / f"{name}.hpk"
    hpk = hashpack.pack(build_model(name), torch.randn(1, 3, 224, 224), hpk_path)
    once_path = directory / f"{name}.once.tflite"
    once_path.write_bytes(build_tflite(hpk, "once").data)
    return hpk_path, once_path, materialize_from_hpk(once_path.read_bytes(), load(hpk_path).weights)


def run_java(
    classes: Path, hpk: Path, once: Path, out: Path, threads: str, repeats: int, jvm_args: list[str]
) -> list[dict[str, float]]:
    """One fresh JVM: the benchmark's rows (one per thread count)."""
    result = subprocess.run(
        ["java", *jvm_args, "-cp", str(classes), "org.hashpack.bench.MaterializeFromHpkBenchmark",
         str(hpk), str(once), threads, str(repeats), str(out)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [
        {key: float(value) for key, value in (part.split("=") for part in line.split())}
        for line in result.stdout.splitlines()
        if line.startswith("threads=")
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--rounds", type=int, default=3, help="Fresh JVMs per build and model.")
    parser.add_argument("--threads", default="1,2", help="Thread counts, as the benchmark takes them.")
    parser.add_argument("--repeats", type=int, default=7, help="Timed runs per JVM and thread count.")
    parser.add_argument(
        "--baseline", metavar="REV", help="Also measure hashpack-java as of this git revision."
    )
    parser.add_argument(
        "--jvm-args",
        default="-Xmx2g",
        help="JVM options, space-separated (scale.py's: -Xmx2g). The benchmark calls System.gc() before "
        "each run, after which G1 shrinks the heap to a few MB; --jvm-args='-Xmx2g -Xms512m' keeps it.",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    build_java()
    load_before = os.getloadavg()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        builds = {"current": JAVA_DIR / "build" / "classes"}
        if args.baseline:
            (directory / "baseline").mkdir()
            builds[args.baseline] = compile_revision(args.baseline, directory / "baseline")
        for name in args.models.split(","):
            hpk, once, expected = build_files(name, directory)
            runs: dict[str, list[list[dict[str, float]]]] = {label: [] for label in builds}
            identical = True
            for round_index in range(args.rounds):
                order = list(builds) if round_index % 2 == 0 else list(reversed(builds))
                for label in order:
                    out = directory / "out.tflite"
                    runs[label].append(
                        run_java(
                            builds[label], hpk, once, out, args.threads, args.repeats, args.jvm_args.split()
                        )
                    )
                    identical &= out.read_bytes() == expected
            weights = runs["current"][0][0]["weights"]
            summary = {
                label: {
                    str(int(row["threads"])): {
                        key: statistics.median(r[i][key] for r in rounds)
                        for key in ("read_ms", "materialize_ms", "total_ms", "ns_per_weight", "cpu_ms")
                    }
                    for i, row in enumerate(rounds[0])
                }
                for label, rounds in runs.items()
            }
            results.append({
                "model": name, "virtual_params": int(weights), "hpk_bytes": hpk.stat().st_size,
                "same_bytes_as_python": identical, "median": summary, "runs": runs,
            })  # fmt: skip
    environment = {
        "jvm_args": args.jvm_args,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps({"results": results, "environment": environment}, indent=1))
        return
    for r in results:
        print(f"{r['model']} ({r['virtual_params'] / 1e6:.1f} M weights, .hpk {r['hpk_bytes'] / 1e6:.1f} MB; "
              f"{'same bytes as Python' if r['same_bytes_as_python'] else 'BYTES DIFFER from Python'})")  # fmt: skip
        for label, by_threads in r["median"].items():
            for threads, m in by_threads.items():
                print(f"  {label:>10} {threads} thread(s): read {m['read_ms']:.1f} ms + decode and fill "
                      f"{m['materialize_ms']:.1f} ms = {m['total_ms']:.1f} ms, {m['ns_per_weight']:.2f} ns/weight; "
                      f"calling thread's CPU {m['cpu_ms']:.1f} ms = {m['cpu_ms'] * 1e6 / r['virtual_params']:.2f} ns/weight")  # fmt: skip
    print(f"JVM options: {args.jvm_args}")
    print(f"load average before / after: {load_before[0]:.1f} / {environment['load_average_after'][0]:.1f} "
          f"on {environment['cpus']} CPUs (a shared machine: compare builds within one run)")  # fmt: skip


if __name__ == "__main__":
    main()
