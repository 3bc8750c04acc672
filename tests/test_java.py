"""The Java decoder (android_demo/hashpack-java) passes its JUnit suite against this package's files.

``run_tests.sh`` compiles the library and its tests, writes fixtures with this interpreter
(tests/java_fixtures.py: models packed here, numpy reference weights and outputs, a damaged-file
corpus with the Python reader's verdicts) and runs JUnit. A missing JDK or JUnit is a failure, not
a skip: CI installs them, and a silently skipped cross-language check is no check.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tx_op_cases
from java_runner import assert_java_golden_passes, check_golden
from zoo_op_cases import CASES, case_hpk

from hashpack.runtime import write_hpk

JAVA_DIR = Path(__file__).resolve().parent.parent / "android_demo" / "hashpack-java"
RUN_TESTS = JAVA_DIR / "run_tests.sh"
TIMEOUT_SECONDS = 600


def test_java_decoder_junit_suite() -> None:
    missing = [tool for tool in ("javac", "java") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not found on PATH: the Java decoder tests need a JDK >= 9 "
            "(Debian/Ubuntu: apt-get install openjdk-17-jdk-headless junit4)",
            pytrace=False,
        )
    env = dict(os.environ, PYTHON=sys.executable)
    try:
        result = subprocess.run(
            ["bash", str(RUN_TESTS)],
            cwd=JAVA_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"{RUN_TESTS} did not finish within {TIMEOUT_SECONDS} s:\n{exc.stdout or ''}", pytrace=False
        )
    output = result.stdout + result.stderr
    passed = re.search(r"^OK \((\d+) tests?\)", result.stdout, re.MULTILINE)
    if result.returncode != 0 or not passed:
        pytest.fail(
            f"{RUN_TESTS} failed (exit status {result.returncode}):\n{output[-20000:]}",
            pytrace=False,
        )
    # JUnitCore prints "OK (0 tests)" for an empty run: require every test the sources declare
    assert int(passed.group(1)) == expected_junit_tests(), result.stdout[-2000:]


def expected_junit_tests() -> int:
    """@Test methods in the sources, the fixture-driven classes counted once per fixture model (or
    zoo op case)."""
    sources = list((JAVA_DIR / "src" / "test").rglob("*Test.java"))
    assert sources, "no JUnit test classes found"
    per_class = {path.stem: path.read_text().count("@Test") for path in sources}
    manifest = json.loads((JAVA_DIR / "build" / "fixtures" / "manifest.json").read_text())
    models = len(manifest["models"])
    assert models >= 10, f"only {models} fixture models"
    op_cases = len(manifest["op_cases"])
    assert op_cases >= 20, f"only {op_cases} zoo op cases"
    return (
        sum(per_class.values())
        + per_class["FixtureModelsTest"] * (models - 1)
        + per_class["ZooOpCasesTest"] * (op_cases - 1)
    )


def test_java_runner_checks_golden_outputs(tmp_path: Path) -> None:
    """tests/java_runner.py (what the zoo tests call): a zoo op case passes its golden check in Java,
    the same file with altered golden outputs fails it, a damaged file is reported, not raised."""
    case = next(c for c in CASES if c.id == "split-shuffle-concat")
    good = tmp_path / "good.hpk"
    write_hpk(case_hpk(case), good)
    hpk = case_hpk(case)
    hpk.tensors["golden/outputs"] = hpk.tensors["golden/outputs"] * np.float32(1.01) + np.float32(1e-3)
    wrong = tmp_path / "wrong.hpk"
    write_hpk(hpk, wrong)
    damaged = tmp_path / "damaged.hpk"
    damaged.write_bytes(good.read_bytes()[:-7])
    results = check_golden([good, wrong, damaged], repeats=2)
    assert [r.passed for r in results] == [True, False, False], results
    assert results[0].max_abs_error is not None and results[0].max_abs_error < 1e-5
    assert results[0].run_seconds is not None and results[0].error is None
    assert results[1].mismatches and results[1].mismatches > 0 and results[1].error is None
    assert results[2].error and "damaged.hpk" in results[2].error
    assert_java_golden_passes(good)
    with pytest.raises(AssertionError, match="golden outputs differ"):
        assert_java_golden_passes(wrong)


def test_java_runner_checks_token_id_models(tmp_path: Path) -> None:
    """An int32 (token ids) model through java_runner: its golden check passes; golden ids outside the
    table are reported as an error naming the Embedding node (a run-time error, not a format error)."""
    case = next(c for c in tx_op_cases.CASES if c.id == "embedding-padding-idx")
    good = tmp_path / "ids.hpk"
    write_hpk(tx_op_cases.case_hpk(case), good)
    hpk = tx_op_cases.case_hpk(case)
    ids = hpk.tensors["golden/inputs"].copy()
    ids.flat[3] = case.vocab  # one past the table
    hpk.tensors["golden/inputs"] = ids
    outside = tmp_path / "outside.hpk"
    write_hpk(hpk, outside)
    results = check_golden([good, outside])
    assert [r.passed for r in results] == [True, False], results
    assert results[0].max_abs_error is not None and results[0].max_abs_error < 1e-6
    assert results[1].error and "node 'n0' (Embedding): token id 5 is outside the table's [0, 5) rows" in (
        results[1].error
    )
