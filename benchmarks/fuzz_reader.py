"""Fuzz the .hpk reader and the numpy runtime with tens of thousands of hostile files.

Every case must end in ``HpkFormatError`` naming the file and the problem, or load and run;
anything else (another exception, a hang, an allocation the file does not justify, a run whose
output disagrees with the declared shape) is a contract violation (docs/FORMAT.md §6). Prints
the cases tried and their outcomes by category and message kind; exits 1 on any violation.

    python benchmarks/fuzz_reader.py                 # ~10k cases, a few minutes
    python benchmarks/fuzz_reader.py --full          # every field x every hostile value of every seed
    python benchmarks/fuzz_reader.py --atheris 20000 # coverage-guided (pip install -e ".[fuzz]")

The mutation toolkit is tests/fuzz_tools.py (shared with tests/test_fuzz_reader.py).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import fuzz_tools as ft

Generated = Iterator[tuple[str, bytes, bool]]  # (label, file bytes, trace allocations)


def field_lies(seeds: dict[str, bytes], rng: random.Random, per_seed: int | None) -> Generated:
    """Every field of every section replaced/deleted/duplicated, re-signed (sampled unless --full)."""
    for name, blob in sorted(seeds.items()):
        parts = ft.Parts.split(blob)
        mutations = list(ft.tree_mutations(parts.meta, rng))
        if per_seed is not None and len(mutations) > per_seed:
            mutations = rng.sample(mutations, per_seed)
        for label, apply in mutations:
            mutated = parts.copy()
            apply(mutated.meta)
            yield f"{name}: {label}", mutated.build(), rng.random() < 0.1


def unsigned_field_lies(seeds: dict[str, bytes], rng: random.Random, count: int) -> Generated:
    """Field lies without re-signing: the checksum (or an earlier check) must catch every one."""
    for _ in range(count):
        name = rng.choice(sorted(seeds))
        label, mutated = ft.random_tree_mutation(ft.Parts.split(seeds[name]), rng)
        yield f"{name}: {label}", mutated.build(sign=False), False


def multi_field_lies(seeds: dict[str, bytes], rng: random.Random, count: int) -> Generated:
    for _ in range(count):
        name = rng.choice(sorted(seeds))
        label, mutated = ft.random_tree_mutation(ft.Parts.split(seeds[name]), rng, rng.randint(2, 5))
        yield f"{name}: {label}", mutated.build(), rng.random() < 0.1


def table_lies(seeds: dict[str, bytes], rng: random.Random, count: int) -> Generated:
    """Tensor table entries (dtype, shape, offsets) replaced: huge sizes, negative, wrong types."""
    for _ in range(count):
        name = rng.choice(sorted(seeds))
        parts = ft.Parts.split(seeds[name])
        tensor = rng.choice(sorted(parts.table))
        key = rng.choice(["dtype", "shape", "data_offsets"])
        if rng.random() < 0.5:
            value = rng.choice(ft.TABLE_VALUES)
        else:
            value = [rng.choice([0, 1, 7, 2**31 - 1, 2**32, 2**62, -1]) for _ in range(rng.randint(0, 9))]
        parts.table[tensor][key] = value
        yield f"{name}: table {tensor}.{key} = {value!r}", parts.build(sign=False), True


def value_lies(seeds: dict[str, bytes], rng: random.Random, count: int) -> Generated:
    """Special float values (NaN, inf, extremes) in any float tensor, re-signed."""
    for _ in range(count):
        name = rng.choice(sorted(seeds))
        parts = ft.Parts.split(seeds[name])
        tensor = rng.choice(sorted(t for t, e in parts.table.items() if e["dtype"] != "I8"))
        array = parts.tensor(tensor)
        index = rng.randrange(array.size)
        value = rng.choice(ft.SPECIAL_FLOATS)
        with np.errstate(over="ignore"):
            array.reshape(-1)[index] = value
        parts.set_tensor(tensor, array)
        yield f"{name}: {tensor}[{index}] = {value}", parts.build(), False


def bit_flips(seeds: dict[str, bytes], rng: random.Random, count: int) -> Generated:
    for _ in range(count):
        name = rng.choice(sorted(seeds))
        flips = rng.choice([1, 1, 2, 4, 16, 64])
        yield f"{name}: {flips} bit flips", ft.bit_flips(seeds[name], rng, flips), rng.random() < 0.2


def resigned_bit_flips(seeds: dict[str, bytes], rng: random.Random, count: int) -> Generated:
    for _ in range(count):
        name = rng.choice(sorted(seeds))
        label, blob = ft.resigned_bit_flip(ft.Parts.split(seeds[name]), rng)
        yield f"{name}: {label}", blob, rng.random() < 0.2


def truncations(seeds: dict[str, bytes], rng: random.Random, per_seed: int) -> Generated:
    for name, blob in sorted(seeds.items()):
        for label, cut in ft.truncations(blob, rng, per_seed):
            yield f"{name}: {label}", cut, True


def json_heavy() -> Iterator[tuple[str, bytes]]:
    """Headers of megabytes of tiny JSON values: what Python's json module costs per byte.

    The ratio does not depend on the size; the header (and so the cost) is capped at 16 MiB.
    """
    for label, item in [("{}", b"{}"), ("[]", b"[]"), ('"ab"', b'"ab"'), ("1000", b"1000"), ("0.5", b"0.5")]:
        body = b"[" + b",".join([item] * (4 * ft.MiB // (len(item) + 1))) + b"]"
        label = f"4 MiB of {label}"
        header = b'{"__metadata__":{},"x":' + body + b"}"
        yield label, ft.container_bytes(header, b"")


class Tally:
    def __init__(self) -> None:
        self.by_category: dict[str, Counter[str]] = defaultdict(Counter)
        self.kinds: Counter[str] = Counter()
        self.examples: dict[str, str] = {}  # message kind -> first message seen
        self.violations: list[str] = []
        self.cases = 0
        self.slowest = (0.0, "")
        self.peak = (0.0, 0, "")  # (share of the allowance, bytes, case)

    def add(self, category: str, label: str, outcome: ft.Outcome, size: int, allowance: int = 10) -> None:
        self.cases += 1
        self.by_category[category][outcome.status] += 1
        if outcome.status.startswith("rejected"):
            self.kinds[outcome.kind] += 1
            self.examples.setdefault(outcome.kind, outcome.message)
        if not outcome.ok:
            self.violations.append(f"[{category}] {label}: {outcome.kind}: {outcome.message}")
        if outcome.seconds > self.slowest[0]:
            self.slowest = (outcome.seconds, f"[{category}] {label}")
        share = outcome.peak_bytes / (allowance * size + 4 * ft.MiB)
        if share > self.peak[0]:
            self.peak = (share, outcome.peak_bytes, f"[{category}] {label} ({size:,} B)")

    def report(self, seconds: float) -> None:
        statuses = ["rejected", "rejected-at-run", "accepted", "violation"]
        print(f"\n{self.cases} cases in {seconds:.0f} s\n")
        print(f"{'category':24}" + "".join(f"{s:>17}" for s in statuses))
        totals: Counter[str] = Counter()
        for category, counts in self.by_category.items():
            totals.update(counts)
            print(f"{category:24}" + "".join(f"{counts[s]:>17}" for s in statuses))
        print(f"{'total':24}" + "".join(f"{totals[s]:>17}" for s in statuses))
        print("\nrejected with HpkFormatError, by message kind:")
        for kind, count in self.kinds.most_common():
            print(f"  {kind:22}{count:>7}   e.g. {self.examples[kind][:100]}")
        print(f"\nslowest case: {self.slowest[0]:.2f} s  {self.slowest[1][:110]}")
        share, peak, label = self.peak
        print(f"largest reader peak (traced cases): {peak:,} B = {share:.0%} of its allowance  {label[:90]}")
        print(f"\ncontract violations: {len(self.violations)}")
        for line in self.violations[:20]:
            print("  " + line[:2000])


def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        seeds = ft.build_seeds(Path(tmp))
    print(f"seed files: {', '.join(f'{name} ({len(blob):,} B)' for name, blob in sorted(seeds.items()))}")
    tally = Tally()
    n = args.cases

    def feed(category: str, generated: Generated) -> None:
        for label, blob, trace in generated:
            tally.add(category, label, ft.check(blob, trace=trace, timeout=args.time_limit), len(blob))

    for case in ft.targeted_cases(seeds):
        outcome = ft.check(case.blob, trace=True, allowance=case.allowance, timeout=3 * args.time_limit)
        problem = ft.expect_outcome(case, outcome)
        if problem and outcome.ok:  # the right error type, but not the message the case expects
            outcome = ft.Outcome("violation", "unexpected message", problem)
        tally.add("targeted (named)", case.name, outcome, len(case.blob), case.allowance)
    per_seed = None if args.full else max(1, int(0.6 * n) // len(seeds))
    feed("field lies (re-signed)", field_lies(seeds, rng, per_seed))
    feed("multi-field lies", multi_field_lies(seeds, rng, n // 20))
    feed("field lies (unsigned)", unsigned_field_lies(seeds, rng, n // 40))
    feed("tensor table lies", table_lies(seeds, rng, n // 20))
    feed("tensor values", value_lies(seeds, rng, n // 40))
    feed("bit flips", bit_flips(seeds, rng, n // 20))
    feed("bit flips (re-signed)", resigned_bit_flips(seeds, rng, n // 20))
    feed("truncations", truncations(seeds, rng, n // (20 * len(seeds))))
    for label, blob in json_heavy():
        outcome = ft.check(blob, trace=True, allowance=ft.JSON_HEAVY_ALLOWANCE, timeout=120)
        tally.add("JSON-heavy headers", label, outcome, len(blob), ft.JSON_HEAVY_ALLOWANCE)
        print(
            f"JSON-heavy header {label}: {outcome.status}, reader peak {outcome.peak_bytes / len(blob):.1f}x"
        )
    tally.report(time.perf_counter() - start)
    return 1 if tally.violations else 0


def run_atheris(args: argparse.Namespace) -> int:
    """Coverage-guided: libFuzzer picks a seed file and bytes to splice into it or its metadata."""
    import atheris

    with tempfile.TemporaryDirectory() as tmp:
        seeds = ft.build_seeds(Path(tmp))
    names = sorted(seeds)
    parts = {name: ft.Parts.split(blob) for name, blob in seeds.items()}
    tally = Tally()
    start = time.perf_counter()

    def one_input(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        mode = fdp.ConsumeIntInRange(0, 3)
        name = names[fdp.ConsumeIntInRange(0, len(names) - 1)]
        if mode == 0:  # the raw input as a file
            blob, label = fdp.ConsumeBytes(fdp.remaining_bytes()), "raw"
        elif mode == 1:  # bytes spliced into a valid file (checksum not fixed)
            blob = bytearray(seeds[name])
            at = fdp.ConsumeIntInRange(0, len(blob) - 1)
            patch = fdp.ConsumeBytes(fdp.remaining_bytes())
            blob[at : at + len(patch)] = patch
            blob, label = bytes(blob), "spliced"
        else:  # text spliced into the metadata (mode 2) or tensor table (mode 3), re-signed
            text = parts[name].meta_text()
            at = fdp.ConsumeIntInRange(0, len(text))
            patch = fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes())
            blob, label = parts[name].build(meta_text=text[:at] + patch + text[at + len(patch) :]), "metadata"
        outcome = ft.check(blob, timeout=args.time_limit)
        tally.add(f"atheris ({label})", name, outcome, len(blob))
        if not outcome.ok:
            raise RuntimeError(f"contract violation: {outcome.kind}: {outcome.message}")

    import atexit

    atexit.register(lambda: tally.report(time.perf_counter() - start))
    atheris.instrument_all()
    atheris.Setup([sys.argv[0], f"-runs={args.atheris}", "-max_len=65536"], one_input)
    atheris.Fuzz()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=10_000, help="about how many random cases")
    parser.add_argument("--full", action="store_true", help="every field lie of every seed (~40k more)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=10.0, help="seconds per case before it is a hang")
    parser.add_argument("--atheris", type=int, metavar="RUNS", help="coverage-guided mode with atheris")
    args = parser.parse_args()
    return run_atheris(args) if args.atheris else run(args)


if __name__ == "__main__":
    sys.exit(main())
