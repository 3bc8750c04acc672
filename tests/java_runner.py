"""Run the Java runtime (android_demo/hashpack-java) on any .hpk file from a Python test.

``check_golden(paths)`` compiles the library once per process (into a private temporary directory,
so it never races ``run_tests.sh`` over ``build/``), runs ``org.hashpack.CheckGolden`` on all the
files in one JVM and returns one ``JavaGoldenResult`` per file: did Java's outputs on the golden
inputs match the outputs PyTorch recorded at pack time (``|y - ref| <= atol + rtol·|ref|``, the
tolerances of ``hashpack validate``), and how long loading and running took. A missing JDK raises
``JavaUnavailable`` with the install hint: a test that needs Java fails, it is not skipped.

    from java_runner import assert_java_golden_passes
    assert_java_golden_passes(path)          # AssertionError naming the file and the error

As a script it times the runtime on files (javac once, then one JVM for all files):
``python tests/java_runner.py [--repeats 3] FILE...``
"""

from __future__ import annotations

import argparse
import atexit
import functools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

JAVA_DIR = Path(__file__).resolve().parent.parent / "android_demo" / "hashpack-java"
MAIN_CLASS = "org.hashpack.CheckGolden"
DEFAULT_ATOL = 1e-4  # hashpack.validation.DEFAULT_ATOL
DEFAULT_RTOL = 1e-4
INSTALL_HINT = "install a JDK >= 9 (Debian/Ubuntu: apt-get install default-jdk-headless; `make system-deps`)"


class JavaUnavailable(RuntimeError):
    """javac or java is not on PATH, or the library does not compile."""


@dataclass(frozen=True)
class JavaGoldenResult:
    """One file's verdict from ``org.hashpack.CheckGolden`` (times in seconds, None if not reached)."""

    file: str
    passed: bool
    error: str | None = None
    samples: int | None = None
    max_abs_error: float | None = None
    mismatches: int | None = None
    max_abs_reference: float | None = None  # largest |golden output|: the scale of max_abs_error
    load_seconds: float | None = None
    check_seconds: float | None = None
    run_seconds: float | None = None

    @property
    def relative_error(self) -> float | None:
        """max |java - golden| / max |golden| (validate's max relative error), None if not computed."""
        if self.max_abs_error is None or not self.max_abs_reference:
            return None
        return self.max_abs_error / self.max_abs_reference

    def describe(self) -> str:
        """One line for an assertion message."""
        if self.error is not None:
            return f"java: {self.error}"
        verdict = "golden outputs match" if self.passed else f"{self.mismatches} golden outputs differ"
        error = "NaN" if self.max_abs_error is None else f"{self.max_abs_error:.3g}"
        return (
            f"java: {self.file}: {verdict} over {self.samples} samples, max |error| {error} "
            f"(outputs up to {self.max_abs_reference or 0:.3g})"
        )


@functools.lru_cache(maxsize=1)
def java_classes() -> Path:
    """The compiled library (javac once per process, about 5 s); raises JavaUnavailable."""
    for tool in ("javac", "java"):
        if shutil.which(tool) is None:
            raise JavaUnavailable(f"{tool} not found on PATH: {INSTALL_HINT}")
    out = Path(tempfile.mkdtemp(prefix="hashpack-java-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    sources = sorted(str(p) for p in (JAVA_DIR / "src" / "main" / "java").rglob("*.java"))
    # the flags of build.sh: Java 8 language level and APIs (Android), warnings are errors
    command = ["javac", "-J-XX:TieredStopAtLevel=1", "--release", "8", "-encoding", "UTF-8"]
    command += ["-Xlint:all,-options", "-Werror", "-d", str(out), *sources]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise JavaUnavailable(f"hashpack-java does not compile:\n{result.stdout}{result.stderr}")
    return out


def check_golden(
    paths: Sequence[str | Path],
    *,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    repeats: int = 0,
    timeout: float = 900,
) -> list[JavaGoldenResult]:
    """Java's golden check of every file, in one JVM (``repeats`` > 0 also times that many runs)."""
    if not paths:
        return []
    command = ["java", "-Xmx3g", "-XX:+UseSerialGC", "-cp", str(java_classes()), MAIN_CLASS]
    command += ["--atol", repr(atol), "--rtol", repr(rtol), "--repeats", str(repeats)]
    command += [str(p) for p in paths]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode not in (0, 1):
        raise RuntimeError(f"{MAIN_CLASS} exited with status {result.returncode}:\n{result.stderr[-4000:]}")
    fields = set(JavaGoldenResult.__dataclass_fields__)
    results = [
        JavaGoldenResult(**{k: v for k, v in json.loads(line).items() if k in fields})
        for line in result.stdout.splitlines()
        if line.startswith("{")
    ]
    if len(results) != len(paths):
        raise RuntimeError(
            f"{MAIN_CLASS} reported {len(results)} of {len(paths)} files:\n{result.stdout[-2000:]}"
            f"{result.stderr[-4000:]}"
        )
    return results


def assert_java_golden_passes(
    path: str | Path, *, atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL
) -> JavaGoldenResult:
    """Java reproduces the file's golden outputs; else AssertionError with the one-line reason."""
    (result,) = check_golden([path], atol=atol, rtol=rtol)
    if not result.passed:
        raise AssertionError(result.describe())
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Prints, per file: verdict, errors, load / first check / fastest of ``--repeats`` run times."""
    parser = argparse.ArgumentParser(description="Run the Java runtime's golden check on .hpk files.")
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed golden runs after the first (default 3)"
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    java_classes()
    print(f"javac: {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    results = check_golden(args.files, repeats=args.repeats)
    wall = time.perf_counter() - start
    print(f"{'file':<28} {'ok':<4} {'max|err|':>9} {'max|ref|':>9} {'load s':>7} {'check s':>8} {'run s':>7}")
    for r in results:
        if r.error is not None:
            print(f"{Path(r.file).name:<28} FAIL {r.error}")
            continue
        print(
            f"{Path(r.file).name:<28} {'yes' if r.passed else 'NO':<4} {r.max_abs_error or 0:>9.2g} "
            f"{r.max_abs_reference or 0:>9.2g} {r.load_seconds or 0:>7.2f} {r.check_seconds or 0:>8.2f} "
            f"{r.run_seconds or 0:>7.2f}"
        )
    print(f"one JVM for {len(results)} files: {wall:.1f} s wall")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
