"""Fuzzing the .hpk reader and the numpy runtime (docs/FORMAT.md §6): a few hundred hostile files.

Every mutant must end in ``HpkFormatError`` with a message naming the file and the problem, or
load and run; never another exception, a hang, or an allocation the file does not justify.
Header lies are re-signed (checksum recomputed) so they reach the semantic checks. The full
run (tens of thousands of cases) is ``python benchmarks/fuzz_reader.py``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import fuzz_tools as ft
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hashpack.runtime import HpkFormatError, read_hpk

FUZZ = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None
)


@pytest.fixture(scope="session")
def seeds() -> dict[str, bytes]:
    return ft.seed_files()


@pytest.fixture(scope="session")
def cases(seeds: dict[str, bytes]) -> list[ft.Case]:
    return ft.targeted_cases(seeds)


def _assert_ok(outcome: ft.Outcome, what: str) -> None:
    assert outcome.ok, f"{what}: {outcome.kind}: {outcome.message}"


def test_seeds_load_run_and_split_back_exactly(seeds: dict[str, bytes]) -> None:
    assert {"mlp", "allops", "lenet5-int8", "mobilenet-fp16-nogolden"} <= set(seeds)
    for name, blob in seeds.items():
        assert ft.Parts.split(blob).build() == blob, name  # the toolkit itself changes nothing
        outcome = ft.check(blob, trace=True)
        assert outcome.status == "accepted" and outcome.kind == "accepted and ran", (name, outcome)


CATEGORIES = ["container", "metadata", "inputs", "outputs", "spaces", "params", "nodes", "graph", "golden"]
CATEGORIES += ["tensors", "non-finite", "checksum", "space", "format", "version", "hash", "producer"]


def test_targeted_mutants_give_the_documented_error(cases: list[ft.Case]) -> None:
    """~250 named lies, one per field and rule of §2-§6, each with the message it must give.

    The reader's peak allocation is traced for each (the JSON-heavy ones, megabytes of header,
    are traced by the benchmark instead, to keep this test fast).
    """
    assert len(cases) > 200
    assert {case.category for case in cases} <= set(CATEGORIES)
    failures = []
    for case in cases:
        outcome = ft.check(case.blob, trace=case.allowance == 10, allowance=case.allowance)
        problem = ft.expect_outcome(case, outcome)
        if problem:
            failures.append(f"{case.name}: {problem}")
    assert not failures, "\n".join(failures)


def test_huge_declared_sizes_allocate_little(cases: list[ft.Case]) -> None:
    """Shapes, sizes, offsets and counts far beyond the file: rejected before anything is allocated."""
    huge = [case for case in cases if ft.is_huge(case)]
    assert len(huge) >= 20, [case.name for case in huge]
    for case in huge:
        outcome = ft.check(case.blob, trace=True)
        assert outcome.status == "rejected", (case.name, outcome)
        assert outcome.peak_bytes < ft.read_allowance(case.blob), (case.name, outcome.peak_bytes)
        assert outcome.peak_bytes < 2 * len(case.blob) + ft.MiB, (case.name, outcome.peak_bytes)


@pytest.mark.parametrize("seed", ["mlp", "allops", "lenet5-int8", "mobilenet-fp16-nogolden"])
@FUZZ
@given(rng=st.randoms(use_true_random=False), steps=st.integers(1, 3))
def test_random_field_mutations(seeds: dict[str, bytes], seed: str, rng: random.Random, steps: int) -> None:
    """Any field of any section replaced by a hostile value, deleted or duplicated; re-signed."""
    label, mutated = ft.random_tree_mutation(ft.Parts.split(seeds[seed]), rng, steps)
    _assert_ok(ft.check(mutated.build(), trace=True), label)


@pytest.mark.parametrize("seed", ["lenet5-fresh", "lenet5-funhash", "lenet5-fsnet"])
@settings(FUZZ, max_examples=30)
@given(rng=st.randoms(use_true_random=False))
def test_random_field_mutations_of_other_schemes(
    seeds: dict[str, bytes], seed: str, rng: random.Random
) -> None:
    label, mutated = ft.random_tree_mutation(ft.Parts.split(seeds[seed]), rng, 1)
    _assert_ok(ft.check(mutated.build()), label)


@FUZZ
@given(
    rng=st.randoms(use_true_random=False), flips=st.integers(1, 16), seed=st.sampled_from(["mlp", "allops"])
)
def test_bit_flips(seeds: dict[str, bytes], rng: random.Random, flips: int, seed: str) -> None:
    """Flipped bits anywhere, checksum left alone: the checksum or an earlier check must catch them."""
    outcome = ft.check(ft.bit_flips(seeds[seed], rng, flips), trace=True)
    _assert_ok(outcome, f"{flips} flips")


@FUZZ
@given(rng=st.randoms(use_true_random=False), seed=st.sampled_from(["mlp", "allops", "lenet5-int8"]))
def test_bit_flips_resigned(seeds: dict[str, bytes], rng: random.Random, seed: str) -> None:
    """A flipped bit in the metadata text or in the tensor data, with a matching checksum."""
    label, blob = ft.resigned_bit_flip(ft.Parts.split(seeds[seed]), rng)
    _assert_ok(ft.check(blob, trace=True), label)


@FUZZ
@given(data=st.data())
def test_truncated_files_are_rejected(seeds: dict[str, bytes], data: st.DataObject) -> None:
    blob = seeds[data.draw(st.sampled_from(["mlp", "allops"]))]
    length = data.draw(st.integers(0, len(blob) - 1))
    outcome = ft.check(blob[:length], trace=True)
    assert outcome.status == "rejected", (length, outcome)
    assert outcome.kind in ("truncated", "not a .hpk file", "tensor table"), (length, outcome.message)


@FUZZ
@given(data=st.data())
def test_tensor_values(seeds: dict[str, bytes], data: st.DataObject) -> None:
    """Special values in any float tensor: NaN/inf are rejected by name, the rest load and run."""
    parts = ft.Parts.split(seeds[data.draw(st.sampled_from(["allops", "mobilenet-fp16-nogolden"]))])
    name = data.draw(st.sampled_from(sorted(n for n, e in parts.table.items() if e["dtype"] != "I8")))
    array = parts.tensor(name)
    index = data.draw(st.integers(0, array.size - 1))
    value = data.draw(st.sampled_from(ft.SPECIAL_FLOATS))
    with np.errstate(over="ignore"):
        array.reshape(-1)[index] = value
    parts.set_tensor(name, array)
    outcome = ft.check(parts.build())
    _assert_ok(outcome, f"{name}[{index}] = {value}")
    if not np.isfinite(array.reshape(-1)[index]):
        assert "NaN or infinite" in outcome.message, outcome


@FUZZ
@given(data=st.data())
def test_tensor_table_lies(seeds: dict[str, bytes], data: st.DataObject) -> None:
    """Any field of any tensor entry (dtype, shape, data_offsets) replaced; not covered by the checksum."""
    blob = seeds["allops"]
    parts = ft.Parts.split(blob)
    name = data.draw(st.sampled_from(sorted(parts.table)))
    key = data.draw(st.sampled_from(["dtype", "shape", "data_offsets"]))
    value = data.draw(st.sampled_from(ft.TABLE_VALUES) | st.lists(st.integers(-2, 2**40), max_size=9))
    parts.table[name][key] = value
    _assert_ok(ft.check(parts.build(sign=False), trace=True), f"{name}.{key} = {value!r}")


@pytest.mark.parametrize(
    "make",
    [lambda tmp: tmp, lambda tmp: tmp / "missing.hpk", lambda tmp: tmp / "empty.hpk"],
    ids=["directory", "missing", "empty"],
)
def test_read_hpk_paths(tmp_path: Path, make: Callable[[Path], Path]) -> None:
    (tmp_path / "empty.hpk").write_bytes(b"")
    path = make(tmp_path)
    with pytest.raises(HpkFormatError, match=str(path)):
        read_hpk(path)
