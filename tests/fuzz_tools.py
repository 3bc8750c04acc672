"""A mutation toolkit for fuzzing the .hpk reader (tests/test_fuzz_reader.py, benchmarks/fuzz_reader.py).

A valid file is split into its parts (metadata document, tensor table, data buffer); a mutation
edits the parts and serialises them again, *re-signed* (the checksum recomputed, so the lie
reaches the semantic checks) or not (so it must be caught as a checksum mismatch). ``check``
feeds the bytes to the reader, runs whatever it accepts, and classifies the outcome; anything but
``HpkFormatError`` with a message naming the file, a hang, or an allocation the file does not
justify is a contract violation (docs/FORMAT.md §6).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import random
import re
import signal
import struct
import tempfile
import time
import traceback
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hashpack.runtime import HpkFormatError, Model, parse_hpk
from hashpack.runtime.container import DTYPES
from hashpack.runtime.summary import summarize

SOURCE = "<fuzz>"
METADATA_KEY = "hashpack"
CHECKSUM_KEY = "hashpack.sha256"
MiB = 1 << 20

Key = str | int
JsonPath = tuple[Key, ...]
Mutation = Callable[["Parts", random.Random], bytes]


# ------------------------------------------------------------------------------------------ parts


class Raw:
    """A JSON token written verbatim (``1e999`` parses as infinity; json.dumps cannot write it)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text})"

    def __deepcopy__(self, memo: dict) -> Raw:
        return self


def dumps(value: Any, *, sort_keys: bool = True) -> str:
    """Compact JSON like the writer's (§7), with ``Raw`` tokens spliced in."""
    raws: list[str] = []

    def raw(item: Any) -> str:
        if not isinstance(item, Raw):
            raise TypeError(f"{type(item).__name__} is not JSON")
        raws.append(item.text)
        return f"@@raw{len(raws) - 1}@@"

    text = json.dumps(value, sort_keys=sort_keys, separators=(",", ":"), default=raw)
    for index, token in enumerate(raws):
        text = text.replace(f'"@@raw{index}@@"', token)
    return text


def container_bytes(header: bytes, data: bytes, header_len: int | None = None) -> bytes:
    """Length prefix + space-padded header + data (``header_len`` may lie)."""
    header += b" " * (-(8 + len(header)) % 8)
    return struct.pack("<Q", len(header) if header_len is None else header_len) + header + data


@dataclass
class Parts:
    """A .hpk file taken apart: what every mutation edits."""

    meta: dict[str, Any]
    table: dict[str, dict[str, Any]]
    data: bytes
    extra: dict[str, str] = field(default_factory=dict)  # other __metadata__ strings
    checksum: str = ""

    @classmethod
    def split(cls, blob: bytes) -> Parts:
        (n,) = struct.unpack_from("<Q", blob, 0)
        header = json.loads(blob[8 : 8 + n])
        strings = header.pop("__metadata__")
        meta = json.loads(strings.pop(METADATA_KEY))
        checksum = strings.pop(CHECKSUM_KEY)
        return cls(meta, header, bytes(blob[8 + n :]), strings, checksum)

    def copy(self) -> Parts:
        return copy.deepcopy(self)

    def meta_text(self) -> str:
        return dumps(self.meta)

    def build(self, *, sign: bool = True, meta_text: str | None = None) -> bytes:
        """The file's bytes; ``sign`` recomputes the checksum (sha256(metadata || data), §2)."""
        text = self.meta_text() if meta_text is None else meta_text
        checksum = self.checksum
        if sign:
            checksum = hashlib.sha256(text.encode("utf-8") + self.data).hexdigest()
        strings = {**self.extra, METADATA_KEY: text, CHECKSUM_KEY: checksum}
        header = dumps({"__metadata__": strings, **self.table}, sort_keys=False).encode()
        return container_bytes(header, self.data)

    # -- tensors
    def tensor(self, name: str) -> np.ndarray:
        entry = self.table[name]
        begin, end = entry["data_offsets"]
        dtype = DTYPES[entry["dtype"]]
        return np.frombuffer(self.data[begin:end], dtype=dtype).reshape(entry["shape"]).copy()

    def tensors(self) -> dict[str, np.ndarray]:
        return {name: self.tensor(name) for name in self.table}

    def set_tensors(self, tensors: dict[str, np.ndarray]) -> None:
        """Lay ``tensors`` out again (name order, like the writer): table and data stay consistent."""
        codes = {dtype: code for code, dtype in DTYPES.items()}
        self.table, chunks, offset = {}, [], 0
        for name in sorted(tensors):
            array = np.ascontiguousarray(tensors[name])
            raw = array.tobytes()
            self.table[name] = {
                "dtype": codes[array.dtype],
                "shape": list(array.shape),
                "data_offsets": [offset, offset + len(raw)],
            }
            chunks.append(raw)
            offset += len(raw)
        self.data = b"".join(chunks)

    def set_tensor(self, name: str, array: np.ndarray) -> None:
        tensors = self.tensors()
        tensors[name] = array
        self.set_tensors(tensors)

    def drop_tensor(self, name: str) -> None:
        tensors = self.tensors()
        del tensors[name]
        self.set_tensors(tensors)


# ----------------------------------------------------------------------------------- json paths


def walk(value: Any, prefix: JsonPath = ()) -> Iterator[JsonPath]:
    """Every path below ``value`` (dict keys and list indices), parents before children."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key)
            yield from walk(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*prefix, index)
            yield from walk(item, (*prefix, index))


def get(value: Any, path: JsonPath) -> Any:
    for key in path:
        value = value[key]
    return value


def put(value: Any, path: JsonPath, new: Any) -> None:
    get(value, path[:-1])[path[-1]] = new


def delete(value: Any, path: JsonPath) -> None:
    del get(value, path[:-1])[path[-1]]


def names_in(meta: dict[str, Any]) -> list[str]:
    """Every string of the metadata: names to wire things to that exist but are the wrong kind."""
    return sorted({get(meta, p) for p in walk(meta) if isinstance(get(meta, p), str)})


HUGE_INTS = [2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**53 + 1, 2**63, 2**64, 10**30, -(2**31) - 1]


def hostile_values(value: Any, names: list[str], rng: random.Random) -> list[tuple[str, Any]]:
    """Replacements for a JSON value: wrong types, out-of-range numbers, other names, oddities."""
    common: list[tuple[str, Any]] = [
        ("null", None),
        ("true", True),
        ("empty string", ""),
        ("empty list", []),
        ("empty object", {}),
        ("1e999", Raw("1e999")),
        ("deep list", json.loads("[" * 60 + "]" * 60)),
    ]
    if isinstance(value, bool):
        specific = [("negated", not value), ("int", int(value)), ("string", str(value).lower())]
    elif isinstance(value, int):
        specific = [
            ("+1", value + 1),
            ("-1", value - 1),
            ("zero", 0),
            ("minus one", -1),
            ("negated", -value),
            ("doubled", value * 2),
            ("as float", value + 0.5),
            ("as string", str(value)),
        ]
        specific += [(f"huge {v}", v) for v in rng.sample(HUGE_INTS, 3)]
    elif isinstance(value, float):
        specific = [
            ("negated", -value),
            ("zero", 0.0),
            ("tiny", 1e-45),
            ("above float32", 3.5e38),
            ("huge int", 10**400),
            ("not float32-exact", 0.1),
            ("as string", str(value)),
        ]
    elif isinstance(value, str):
        specific = [
            ("suffixed", value + "_x"),
            ("long", "a" * 5000),
            ("non-ASCII", value + "é\u202e"),
            ("int", 7),
            ("wrapped in list", [value]),
        ]
        specific += [(f"other name {n!r}", n) for n in rng.sample(names, min(3, len(names)))]
    elif isinstance(value, list):
        specific = [
            ("last dropped", value[:-1]),
            ("last repeated", value + value[-1:]),
            ("reversed", value[::-1]),
            ("string", "x"),
            ("list of null", [None]),
            ("nested", [value]),
        ]
    elif isinstance(value, dict):
        specific = [("unknown key", {**value, "bogus": 1}), ("list", [value]), ("string", "x")]
    else:  # None (the batch dimension)
        specific = [("zero", 0), ("one", 1), ("minus one", -1), ("string", "N")]
    return specific + common


def tree_mutations(meta: dict[str, Any], rng: random.Random) -> Iterator[tuple[str, Callable[[dict], None]]]:
    """Every field of every section (§3-§5) replaced by hostile values, deleted, or duplicated."""
    names = names_in(meta)
    for path in walk(meta):
        yield from path_mutations(meta, path, names, rng)


def path_mutations(
    meta: dict[str, Any], path: JsonPath, names: list[str], rng: random.Random
) -> Iterator[tuple[str, Callable[[dict], None]]]:
    """The mutations of one field: hostile replacements, deletion, an unknown key, duplication."""
    where = "/".join(map(str, path))
    value = get(meta, path)
    for label, new in hostile_values(value, names, rng):
        yield f"{where} := {label}", _putter(path, new)
    yield f"{where} deleted", _deleter(path)
    if isinstance(value, dict):
        yield f"{where} + unknown key", _putter((*path, "bogus"), 1)
    if isinstance(path[-1], int):
        yield f"{where} duplicated", _duplicator(path)


def _putter(path: JsonPath, new: Any) -> Callable[[dict], None]:
    return lambda meta: put(meta, path, copy.deepcopy(new))


def _deleter(path: JsonPath) -> Callable[[dict], None]:
    return lambda meta: delete(meta, path)


def _duplicator(path: JsonPath) -> Callable[[dict], None]:
    def apply(meta: dict) -> None:
        items = get(meta, path[:-1])
        items.insert(path[-1], copy.deepcopy(items[path[-1]]))

    return apply


def random_tree_mutation(parts: Parts, rng: random.Random, steps: int = 1) -> tuple[str, Parts]:
    """``steps`` random field mutations of the metadata (a copy).

    Half the time the field is drawn from one top-level section chosen first, so that small
    sections (format, version, inputs, golden) are hit as often as the big ones (params, nodes).
    """
    mutated = parts.copy()
    labels = []
    for _ in range(steps):
        paths = list(walk(mutated.meta))
        if not paths:
            break
        if rng.random() < 0.5:
            section = rng.choice(sorted(mutated.meta))
            paths = [p for p in paths if p[0] == section]
        path = rng.choice(paths)
        label, apply = rng.choice(list(path_mutations(mutated.meta, path, names_in(mutated.meta), rng)))
        apply(mutated.meta)
        labels.append(label)
    return "; ".join(labels), mutated


# -------------------------------------------------------------------------------- byte mutations


def truncations(blob: bytes, rng: random.Random, count: int) -> Iterator[tuple[str, bytes]]:
    (n,) = struct.unpack_from("<Q", blob, 0)
    fixed = {0, 1, 7, 8, 9, 8 + n // 2, 8 + n - 1, 8 + n, 8 + n + 1, len(blob) - 1}
    points = sorted(fixed | {rng.randrange(len(blob)) for _ in range(count)})
    for point in points:
        if point < len(blob):
            yield f"truncated to {point} bytes", blob[:point]


def bit_flips(blob: bytes, rng: random.Random, flips: int = 1) -> bytes:
    data = bytearray(blob)
    for _ in range(flips):
        position = rng.randrange(len(data) * 8)
        data[position // 8] ^= 1 << (position % 8)
    return bytes(data)


def resigned_bit_flip(parts: Parts, rng: random.Random) -> tuple[str, bytes]:
    """A bit flip in the metadata text or the data buffer, checksum recomputed."""
    if rng.random() < 0.5 and parts.data:
        data = bit_flips(parts.data, rng)
        mutated = parts.copy()
        mutated.data = data
        return "data bit flip (re-signed)", mutated.build()
    text = bytearray(parts.meta_text().encode())
    position = rng.randrange(len(text) * 8)
    text[position // 8] ^= 1 << (position % 8)
    return "metadata bit flip (re-signed)", parts.build(meta_text=text.decode("utf-8", "replace"))


# --------------------------------------------------------------------------------- the harness


@dataclass
class Outcome:
    """What one case did. ``status``: rejected | rejected-at-run | accepted | violation."""

    status: str
    kind: str
    message: str = ""
    seconds: float = 0.0
    peak_bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.status != "violation"


class Hang(Exception):
    """A case ran past its time limit."""


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    if not seconds or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise Hang(f"no result after {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


MESSAGE_KINDS = [  # (kind, pattern of the message after the file name), first match wins
    ("truncated", r"^truncated|\(truncated file\)"),
    ("not a .hpk file", r"^not a \.hpk file|^header |^not a hashpack file"),
    ("tensor table", r"^tensor (name )?'[^']*'(:| starts| is not allowed)|^tensors cover"),
    ("metadata JSON", r"^metadata is not"),
    ("format/version/hash", r"^format is|^unsupported (format version|hash)"),
    ("checksum", r"^checksum mismatch"),
    ("non-finite values", r"NaN or infinite|overflow float32"),
    ("size limits", r"limit\b|exceeds? the|would hold|graph needs more"),
    ("unreferenced tensor", r"is not referenced"),
    ("tensor mismatch", r"tensor .* (is missing|metadata declares|is used twice)"),
    ("unknown op/scheme", r"unknown op|unknown compression scheme"),
    ("inputs/outputs", r"^(inputs|outputs|metadata: (inputs|outputs))"),
    ("space", r"^space "),
    (
        "graph wiring",
        r"^graph output|^node .*(produced|exactly one output|takes|refers to|missing param|unexpected param)",
    ),
    (
        "op attrs",
        r"^node .*(attr |must be positive|groups=|exceeds half|is negative|bias shape|differ in shape)",
    ),
    (
        "graph shapes",
        r"^node .*(rank|does not fit|does not match|larger than|out of range|reshape|broadcast|channels)",
    ),
    ("node fields", r"^node "),
    ("param fields", r"^param "),
    ("golden", r"^golden"),
    ("metadata fields", r"^metadata"),
]


def message_kind(message: str) -> str:
    for kind, pattern in MESSAGE_KINDS:
        if re.search(pattern, message):
            return kind
    return "other"


def read_allowance(blob: bytes, factor: int = 10) -> int:
    """The most the reader may allocate for ``blob``: ``factor`` x the file plus 4 MiB.

    10x holds for every file whose size comes from tensors or ordinary metadata. A header that is
    megabytes of tiny JSON objects costs Python's json module up to ~25x its size (a 64-byte dict
    per ``{},``); ``JSON_HEAVY_ALLOWANCE`` covers those (the header itself is capped at 16 MiB).
    """
    return factor * len(blob) + 4 * MiB


JSON_HEAVY_ALLOWANCE = 32


def check(
    blob: bytes,
    *,
    run: bool = True,
    trace: bool = False,
    allowance: int = 10,
    timeout: float | None = 120.0,
    max_input: int = 1 << 20,
) -> Outcome:
    """Read ``blob``; run it if accepted. Every result but a violation keeps the contract.

    ``trace``: measure the reader's peak allocation (tracemalloc) against ``read_allowance``.
    ``timeout``: wall-clock seconds before a case counts as a hang. The default is generous, so a
    loaded CI machine cannot turn a slow case into a failure (the slowest case takes ~1 s idle);
    ``benchmarks/fuzz_reader.py`` passes its own, stricter ``--time-limit``.
    """
    start = time.perf_counter()
    try:
        with time_limit(timeout):
            outcome = _check(blob, run=run, trace=trace, allowance=allowance, max_input=max_input)
    except Hang as exc:
        outcome = Outcome("violation", "hang", str(exc))
    except Exception as exc:  # the contract: nothing but HpkFormatError, ever
        outcome = Outcome("violation", type(exc).__name__, "".join(traceback.format_exception(exc))[-3000:])
    outcome.seconds = time.perf_counter() - start
    return outcome


def _check(blob: bytes, *, run: bool, trace: bool, allowance: int, max_input: int) -> Outcome:
    peak = 0
    error: HpkFormatError | None = None
    if trace:
        tracemalloc.start()
    try:
        hpk = parse_hpk(blob, SOURCE)
    except HpkFormatError as exc:
        error = exc
    finally:
        if trace:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    if trace and peak > read_allowance(blob, allowance):
        return Outcome("violation", "allocation", f"reader peak {peak} bytes for a {len(blob)}-byte file")
    if error is not None:
        return _rejected("rejected", str(error), peak)
    summarize(hpk, len(blob))  # what `hashpack inspect` shows
    if not run:
        return Outcome("accepted", "accepted (not run)", peak_bytes=peak)
    model = Model(hpk)
    x = model.golden_inputs
    sample = math.prod(model.input_shape[1:])  # type: ignore[arg-type]
    if x is None:
        if sample > max_input:
            return Outcome("accepted", "accepted (input too large to run)", peak_bytes=peak)
        x = np.random.default_rng(0).standard_normal((2, *model.input_shape[1:])).astype(np.float32)
    try:
        with np.errstate(all="ignore"):
            y = model.run(x)
    except HpkFormatError as exc:
        return _rejected("rejected-at-run", str(exc), peak)
    expected = (x.shape[0], *model.output_shape[1:])
    if y.shape != expected or y.dtype != np.float32:
        return Outcome("violation", "wrong output", f"output {y.dtype}{list(y.shape)}, declared {expected}")
    return Outcome("accepted", "accepted and ran", peak_bytes=peak)


def _rejected(status: str, message: str, peak: int) -> Outcome:
    prefix = f"{SOURCE}: "
    if not message.startswith(prefix) or len(message) <= len(prefix) + 5:
        return Outcome("violation", "bad message", message)
    return Outcome(status, message_kind(message[len(prefix) :]), message, peak_bytes=peak)


# ------------------------------------------------------------------------------------- seeds


@functools.cache
def seed_files() -> dict[str, bytes]:
    """``build_seeds``, built once per process (the test modules share them)."""
    with tempfile.TemporaryDirectory() as tmp:
        return build_seeds(Path(tmp))


def build_seeds(directory: Path) -> dict[str, bytes]:
    """Valid .hpk files covering every op, scheme, space dtype, with and without golden data."""
    import torch
    from torch import nn

    import hashpack
    from hashpack.models import LeNet5, MobileNetTiny, mlp
    from hashpack.nn.compress import METHODS
    from hashpack.nn.quantize import quantize

    def pack(name: str, model: nn.Module, shape: tuple[int, ...], golden: int) -> None:
        torch.manual_seed(1)
        path = directory / f"{name}.hpk"
        hashpack.pack(model.eval(), torch.randn(max(golden, 1), *shape), path, golden=golden)
        seeds[name] = path.read_bytes()

    seeds: dict[str, bytes] = {}
    torch.manual_seed(0)
    pack("mlp", hashpack.compress(mlp((1, 8, 8), 10), compression=1 / 8, seed=3), (1, 8, 8), 2)
    torch.manual_seed(0)
    pack("allops", hashpack.compress(_all_ops_model(), compression=1 / 4, seed=4), (3, 12, 12), 2)
    torch.manual_seed(0)
    lenet = quantize(hashpack.compress(LeNet5((1, 12, 12), 10), compression=1 / 8, seed=5), "int8")
    pack("lenet5-int8", lenet, (1, 12, 12), 1)
    torch.manual_seed(0)
    mobile = hashpack.compress(MobileNetTiny((3, 8, 8), 10, width=8), compression=1 / 8, seed=6)
    pack("mobilenet-fp16-nogolden", quantize(mobile, "fp16"), (3, 8, 8), 0)
    for method in sorted(set(METHODS) - {"hashed"}):
        torch.manual_seed(0)
        model = hashpack.compress(LeNet5((1, 12, 12), 10), method=method, compression=1 / 4, seed=7)
        pack(f"lenet5-{method}", model, (1, 12, 12), 1)
    return seeds


def _all_ops_model() -> Any:
    """Every op of docs/FORMAT.md §5 in one small model (test_roundtrip.AllOps in miniature)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class AllOps(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.dw = nn.Conv2d(4, 4, 3, padding=2, dilation=2, groups=4)
            self.strided = nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=2, bias=False)
            self.maxpool = nn.MaxPool2d(3, stride=1, padding=1)
            self.avgpool = nn.AvgPool2d(2, stride=2, padding=1, count_include_pad=False)
            self.avgpool_incl = nn.AvgPool2d(2)
            self.gap = nn.AdaptiveAvgPool2d(1)
            self.relu6 = nn.ReLU6()
            self.fc = nn.Linear(4 * 4 * 4 + 4, 16)
            self.bn1d = nn.BatchNorm1d(16)
            self.head = nn.Linear(16, 5)
            self.softmax = nn.Softmax(dim=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = F.relu(self.bn(self.conv(x)))
            x = x + self.dw(x)
            x = self.relu6(self.strided(x))
            x = torch.sigmoid(self.maxpool(x))
            skip = self.gap(x)
            x = torch.tanh(self.avgpool(x))
            x = torch.cat([x.view(x.size(0), -1), torch.flatten(skip, 1)], dim=1)
            x = self.bn1d(self.fc(x)).relu()
            pooled = torch.sigmoid(self.avgpool_incl(x.view(x.size(0), 1, 4, 4)).flatten(1))
            return torch.cat([self.softmax(self.head(x)), pooled], dim=1)

    return AllOps()


# ---------------------------------------------------------------------------- targeted mutants


@dataclass
class Case:
    """A named mutant and the message (regex, after the file name) it must be rejected with.

    ``expect=""``: the mutant is a valid file and must load and run. ``allowance``: the reader
    may allocate this many times the file size (+ 4 MiB), see ``read_allowance``.
    """

    name: str
    category: str
    blob: bytes
    expect: str
    allowance: int = 10


DELETE = Raw("<delete>")  # as a value in the tables below: remove the field
Edit = Callable[[dict[str, Any]], Any]


def locate(meta: dict[str, Any], path: str) -> tuple[Any, Key]:
    """The container and key of ``path``, e.g. ``nodes/conv/attrs/groups`` (nodes go by name)."""
    *parents, last = path.split("/")
    target: Any = meta
    for key in parents:
        target = target[_key(target, key)]
    return target, _key(target, last)


def _key(container: Any, key: str) -> Key:
    if isinstance(container, list):
        if key.isdigit():
            return int(key)
        return next(i for i, n in enumerate(container) if n.get("name") == key)
    return key


def setting(path: str, value: Any) -> Edit:
    def edit(meta: dict[str, Any]) -> None:
        container, key = locate(meta, path)
        if value is DELETE:
            del container[key]
        else:
            container[key] = copy.deepcopy(value)

    return edit


# (seed, path, value, the message the reader must give); all re-signed. Seeds: see build_seeds.
FIELD_LIES: list[tuple[str, str, Any, str]] = [
    # §3 top level
    ("mlp", "format", "hashpack2", "format is 'hashpack2'"),
    ("mlp", "format", DELETE, "format is None"),
    ("mlp", "version", 2, "unsupported format version 2"),
    ("mlp", "version", 0, "unsupported format version 0"),
    ("mlp", "version", "1", "unsupported format version '1'"),
    ("mlp", "version", 1.0, "unsupported format version 1.0"),
    ("mlp", "version", True, "unsupported format version True"),
    ("mlp", "hash", "hp64", "unsupported hash 'hp64'"),
    ("mlp", "producer", 5, "producer has the wrong type"),
    ("mlp", "inputs", [], "exactly one"),
    ("mlp", "outputs", "x", "field 'outputs' has the wrong type"),
    ("mlp", "spaces", [], "field 'spaces' has the wrong type"),
    ("mlp", "params", None, "field 'params' has the wrong type"),
    ("mlp", "nodes", {}, "field 'nodes' has the wrong type"),
    ("mlp", "nodes", DELETE, "missing field 'nodes'"),
    ("mlp", "golden", [], "golden: is not a JSON object"),
    ("mlp", "golden/inputs", "golden/nope", "missing or empty"),
    ("mlp", "golden/outputs", "golden/inputs", "metadata declares|used twice"),
    ("mlp", "golden/outputs", DELETE, "golden: missing field 'outputs'"),
    # §3 inputs and outputs
    ("mlp", "inputs/0/name", 3, "field 'name' has the wrong type"),
    ("mlp", "inputs/0/shape", [1, 8, 8], "must start with null"),
    ("mlp", "inputs/0/shape", [None, 0, 8, 8], "dimension 0"),
    ("mlp", "inputs/0/shape", [None, -1, 8, 8], "dimension -1"),
    ("mlp", "inputs/0/shape", [None, 1, 8, 2**31], "dimension 2147483648"),
    ("mlp", "inputs/0/shape", [None, None, 8, 8], "dimension None"),
    ("mlp", "inputs/0/shape", [None, 1.0, 8, 8], "dimension 1.0"),
    ("mlp", "inputs/0/shape", [None, *[1] * 8], "at most 8"),
    ("mlp", "inputs/0/shape", [None, 1, 9, 9], "does not fit weight"),  # graph checks come first
    ("mlp", "inputs/0/shape", DELETE, "shape None"),
    ("mobilenet-fp16-nogolden", "inputs/0/shape", [None, 4, 8, 8], "has 4 channels"),
    ("mobilenet-fp16-nogolden", "inputs/0/shape", [None, 3, 8], "rank 3, expected 4"),
    ("allops", "outputs/0/shape", [None, 10], r"declared \[None, 10\] but the graph computes \[None, 9\]"),
    ("allops", "outputs/0/name", "nope", "graph output 'nope' is not produced"),
    ("allops", "outputs/0/name", "x", "graph output 'x' is not produced"),
    # §3 spaces
    ("mlp", "spaces/1/size", 0, "bucket count 0"),
    ("mlp", "spaces/1/size", -1, "bucket count -1"),
    ("mlp", "spaces/1/size", 2**30 + 1, "bucket count 1073741825"),
    ("mlp", "spaces/1/size", 2**30, r"is float32\[2438\], metadata declares float32\[1073741824\]"),
    ("mlp", "spaces/1/size", 2439, "metadata declares"),
    ("mlp", "spaces/1/size", "2438", "field 'size' has the wrong type"),
    ("mlp", "spaces/1/size", True, "field 'size' has the wrong type"),
    ("mlp", "spaces/1/dtype", "bfloat16", "unsupported bucket dtype 'bfloat16'"),
    ("mlp", "spaces/1/dtype", "float16", "metadata declares float16"),
    ("mlp", "spaces/1/dtype", "int8", "metadata declares int8"),
    ("mlp", "spaces/1/tensor", "spaces/nope", "tensor 'spaces/nope' is missing"),
    ("mlp", "spaces/1/tensor", "spaces/3", "metadata declares|used twice"),
    ("mlp", "spaces/1/tensor", 7, "field 'tensor' has the wrong type"),
    ("mlp", "spaces/1/tensor", DELETE, "missing field 'tensor'"),
    ("mlp", "spaces/1", 5, "space '1': is not a JSON object"),
    ("mlp", "spaces/1", DELETE, "unknown space '1'"),
    ("lenet5-int8", "spaces/classifier.0/scale", 0, "int8 scale 0 "),
    ("lenet5-int8", "spaces/classifier.0/scale", -0.5, "int8 scale -0.5 "),
    ("lenet5-int8", "spaces/classifier.0/scale", 0.1, "int8 scale 0.1 "),  # not exactly a float32
    ("lenet5-int8", "spaces/classifier.0/scale", Raw("1e999"), "int8 scale inf "),
    ("lenet5-int8", "spaces/classifier.0/scale", 10**400, "int8 scale 1000"),
    ("lenet5-int8", "spaces/classifier.0/scale", "0.5", "field 'scale' has the wrong type"),
    ("lenet5-int8", "spaces/classifier.0/scale", float(np.float32(3e38)), "overflow float32"),
    ("lenet5-int8", "spaces/classifier.0/scale", DELETE, "missing field 'scale'"),
    # §4 params and schemes
    ("mlp", "params/1.weight/scheme", "bogus", "unknown compression scheme 'bogus'"),
    ("mlp", "params/1.weight/scheme", 5, "field 'scheme' has the wrong type"),
    ("mlp", "params/1.weight/scheme", DELETE, "missing field 'scheme'"),
    ("mlp", "params/1.weight/shape", [0, 64], "dimension 0"),
    ("mlp", "params/1.weight/shape", [-300, 64], "dimension -300"),
    ("mlp", "params/1.weight/shape", [2**31, 1], "dimension 2147483648"),
    ("mlp", "params/1.weight/shape", [300, 64, 1, 1, 1, 1, 1, 1, 1], "at most 8"),
    ("mlp", "params/1.weight/shape", [2**31 - 1], "elements exceed the 2\\^31-1 limit|expansion limit"),
    ("mlp", "params/1.weight/shape", [2**16 * 2438 + 1], "expansion limit"),
    ("mlp", "params/1.weight/shape", [300, 65], "does not fit weight"),
    ("mlp", "params/1.weight/shape", [300, 64, 1, 1], "expected rank 2"),
    ("mlp", "params/1.weight/shape", DELETE, "shape None"),
    ("mlp", "params/1.weight/seed", -1, "seed -1 is not"),
    ("mlp", "params/1.weight/seed", 2**32, "seed 4294967296 is not"),
    ("mlp", "params/1.weight/seed", 1.5, "field 'seed' has the wrong type"),
    ("mlp", "params/1.weight/seed", True, "field 'seed' has the wrong type"),
    ("mlp", "params/1.weight/seed", "1", "field 'seed' has the wrong type"),
    ("mlp", "params/1.weight/seed", DELETE, "missing field 'seed'"),
    ("mlp", "params/1.weight/space", "nope", "unknown space 'nope'"),
    ("mlp", "params/1.weight/space", ["1"], "field 'space' has the wrong type"),
    ("mlp", "params/1.weight", [], "is not a JSON object"),
    ("allops", "params/bn.bias/shape", [5], r"metadata declares float32\[5\]"),
    ("allops", "params/bn.bias/tensor", "params/x", "tensor 'params/x' is missing"),
    ("allops", "params/bn.bias/tensor", "spaces/conv", "metadata declares|used twice"),
    ("allops", "params/conv.weight", DELETE, "unknown param 'conv.weight'"),
    ("allops", "params/conv.weight/shape", [4, 3, 15, 15], "larger than the padded input"),  # kernel > input
    ("allops", "params/fc.weight/shape", [16, 67], "does not fit weight"),
    # §5 attrs of every op
    ("allops", "nodes/conv/attrs/groups", 0, "groups=0"),
    ("allops", "nodes/conv/attrs/groups", -1, "groups=-1"),
    ("allops", "nodes/conv/attrs/groups", 3, "groups=3 does not divide 4"),
    ("allops", "nodes/conv/attrs/groups", 2, "has 3 channels, weight expects 6"),
    ("allops", "nodes/conv/attrs/groups", "1", "attr 'groups' = '1' is not a valid int"),
    ("allops", "nodes/conv/attrs/groups", 2**40, "not a valid int"),
    ("allops", "nodes/conv/attrs/stride", [0, 0], "must be positive"),
    ("allops", "nodes/conv/attrs/stride", [1], "not a valid pair"),
    ("allops", "nodes/conv/attrs/stride", [2**31 - 1, 1], "cannot reshape"),  # 1 row: fails downstream
    ("allops", "nodes/conv/attrs/padding", [-1, -1], "not a valid pair"),
    ("allops", "nodes/conv/attrs/padding", [2**31 - 1] * 2, "padded input would hold"),
    ("allops", "nodes/conv/attrs/padding", [20000, 20000], "padded input would hold"),
    ("allops", "nodes/conv/attrs/dilation", [0, 1], "must be positive"),
    ("allops", "nodes/conv/attrs/dilation", [9, 9], "larger than the padded input"),
    ("allops", "nodes/conv/attrs/dilation", [1.0, 1.0], "not a valid pair"),
    ("allops", "nodes/bn/attrs/eps", -1, "eps -1 is negative"),
    ("allops", "nodes/bn/attrs/eps", "1e-5", "not a valid float"),
    ("allops", "nodes/bn/attrs/eps", Raw("1e999"), "not a valid float"),
    ("allops", "nodes/bn/attrs/eps", 10**400, "not a valid float"),
    ("allops", "nodes/bn/attrs/eps", None, "not a valid float"),
    ("allops", "nodes/maxpool/attrs/kernel", [0, 0], "must be positive|exceeds half"),
    ("allops", "nodes/maxpool/attrs/kernel", [20, 20], "larger than the padded input"),
    ("allops", "nodes/maxpool/attrs/padding", [2, 2], "exceeds half the kernel"),
    ("allops", "nodes/maxpool/attrs/dilation", [0, 0], "must be positive"),
    ("allops", "nodes/maxpool/attrs/stride", [0, 1], "must be positive"),
    ("allops", "nodes/avgpool/attrs/count_include_pad", 1, "not a valid bool"),
    ("allops", "nodes/avgpool/attrs/kernel", [13, 13], "larger than the padded input"),
    ("allops", "nodes/avgpool/attrs/padding", [2, 2], "exceeds half the kernel"),
    ("allops", "nodes/flatten/attrs/start_dim", 0, "start_dim 0 is out of range"),
    ("allops", "nodes/flatten/attrs/start_dim", 4, "start_dim 4 is out of range"),
    ("allops", "nodes/flatten/attrs/start_dim", -1, "start_dim -1 is out of range"),
    ("allops", "nodes/flatten/attrs/start_dim", True, "not a valid int"),
    ("allops", "nodes/view/attrs/shape", [65], "cannot reshape"),
    ("allops", "nodes/view/attrs/shape", [-1], "positive"),
    ("allops", "nodes/view/attrs/shape", [0], "positive"),
    ("allops", "nodes/view/attrs/shape", [2**31 - 1], "cannot reshape"),
    ("allops", "nodes/view/attrs/shape", [8, 8], "does not match"),  # right count; Concat needs rank 2
    ("allops", "nodes/view/attrs/shape", [1] * 9, "not a valid ints"),
    ("allops", "nodes/cat/attrs/axis", 0, "axis 0 is out of range"),
    ("allops", "nodes/cat/attrs/axis", 2, "axis 2 is out of range"),
    ("allops", "nodes/cat/attrs/axis", -1, "axis -1 is out of range"),
    ("allops", "nodes/softmax/attrs/axis", 2, "axis 2 is out of range"),
    ("allops", "nodes/softmax/attrs/axis", -3, "axis -3 is out of range"),
    # §5 nodes and wiring
    ("allops", "nodes/relu/op", "Mish", "unknown op 'Mish'"),
    ("allops", "nodes/relu/op", "relu", "unknown op 'relu'"),
    ("allops", "nodes/relu/inputs", ["nope"], "input 'nope' is not produced by an earlier node"),
    ("allops", "nodes/relu/inputs", [1], "input 1 is not produced"),
    ("allops", "nodes/relu/inputs", ["bn", "bn"], "takes 1 input"),
    ("allops", "nodes/relu/outputs", ["relu", "r2"], "exactly one output"),
    ("allops", "nodes/relu/outputs", ["x"], "output 'x' is produced twice"),
    ("allops", "nodes/relu/outputs", ["bn"], "output 'bn' is produced twice"),
    ("allops", "nodes/relu/params/gamma", "bn.bias", "unexpected param 'gamma'"),
    ("allops", "nodes/add/inputs", ["relu"], "takes 2 input"),
    ("allops", "nodes/cat/inputs", [], "at least one input"),
    ("allops", "nodes/cat/inputs", ["view", "gap"], "does not match"),
    ("allops", "nodes/fc/inputs", ["relu"], "does not fit weight"),
    ("allops", "nodes/bn1d/inputs", ["cat"], "does not fit 16 channels"),
    ("allops", "nodes/fc/params/weight", DELETE, "missing param 'weight'"),
    ("allops", "nodes/fc/params/weight", "nope", "unknown param 'nope'"),
    ("allops", "nodes/fc/params/weight", ["fc.weight"], "unknown param"),
    ("allops", "nodes/fc/params/bias", "head.bias", "bias shape"),
    ("allops", "nodes/conv/params/bias", "fc.bias", "bias shape"),
    ("allops", "nodes/conv/params/weight", "fc.weight", "expected rank 4"),
    ("allops", "nodes/0", [], "node #0: is not a JSON object"),
    *[("allops", f"nodes/relu/{key}", DELETE, f"missing field '{key}'") for key in ("op", "name", "inputs")],
    *[
        ("allops", f"nodes/relu/{key}", DELETE, f"missing field '{key}'")
        for key in ("outputs", "params", "attrs")
    ],
    *[("allops", f"nodes/{n}/attrs", {}, "missing attr") for n in ("conv", "bn", "maxpool", "avgpool")],
    *[("allops", f"nodes/{n}/attrs", {}, "missing attr") for n in ("flatten", "view", "cat", "softmax")],
    *[("allops", f"nodes/{n}/attrs/zzz", 1, "unexpected attr 'zzz'") for n in ("conv", "relu", "gap", "fc")],
]


def _swap_first_nodes(meta: dict[str, Any]) -> None:
    meta["nodes"].insert(0, meta["nodes"].pop(1))


def _retype(name: str, op: str, inputs: list[str]) -> Edit:
    return setting(f"nodes/{name}", {"op": op, "name": name, "inputs": inputs, "outputs": [name]} | _EMPTY)


_EMPTY = {"params": {}, "attrs": {}}


def _mixed_batchnorm(meta: dict[str, Any]) -> None:
    meta["params"]["bn.weight"] = {"scheme": "hashed", "shape": [5], "space": "conv", "seed": 1}


def _huge_total(meta: dict[str, Any]) -> None:
    for name in ("1.weight", "3.weight"):  # each within its own limits, together over 2^28
        meta["params"][name]["shape"] = [2**16 * meta["spaces"][meta["params"][name]["space"]]["size"] - 1]


def _chain(count: int, op: str, arity: int, attrs: dict[str, Any]) -> Edit:
    def edit(meta: dict[str, Any]) -> None:
        chain = [
            {"op": op, "name": f"n{i}", "inputs": [f"n{i - 1}" if i else "x"] * arity, "outputs": [f"n{i}"]}
            | {"params": {}, "attrs": attrs}
            for i in range(count)
        ]
        meta["nodes"] = chain + meta["nodes"]

    return edit


# (seed, label, message, edit, reader allocation allowance): lies that need more than one field
GRAPH_LIES: list[tuple[str, str, str, Edit, int]] = [
    ("allops", "nodes out of order", "not produced by an earlier node", _swap_first_nodes, 10),
    (
        "allops",
        "Add broadcasting the wrong way",
        "does not broadcast",
        _retype("flatten", "Add", ["gap", "sigmoid"]),
        10,
    ),
    ("allops", "Add of different ranks", "does not broadcast", _retype("cat", "Add", ["view", "gap"]), 10),
    (
        "allops",
        "GlobalAvgPool of a rank-2 value",
        "rank 2, expected 4",
        _retype("flatten_1", "GlobalAvgPool", ["relu_1"]),
        10,
    ),
    ("allops", "BatchNorm params of mixed sizes", "differ in shape", _mixed_batchnorm, 10),
    ("mlp", "virtual params over 2^28 in total", "virtual parameters exceed", _huge_total, 10),
    (
        "allops",
        "concat doubling 40 times",
        "the graph needs more than",
        _chain(40, "Concat", 2, {"axis": 1}),
        10,
    ),
    ("allops", "100001 nodes", "nodes exceed the 100000 limit", _chain(100_001, "Relu", 1, {}), 32),
    (
        "allops",
        "concat of 700000 inputs",
        "the graph needs more than",
        _chain(1, "Concat", 700_000, {"axis": 1}),
        32,
    ),
    *[
        (
            "mobilenet-fp16-nogolden",
            f"input {shape}",
            "exceed the|would hold",
            setting("inputs/0/shape", shape),
            10,
        )
        for shape in ([None, 2**31 - 1], [None, 3, 2**15, 2**15], [None, 3, 4096, 4096])
    ],
]

# (tensor of the allops seed, field, value, message): lies in the safetensors tensor table
TABLE_LIES: list[tuple[str, str, Any, str]] = [
    ("params/bn.bias", "dtype", "F64", "unsupported dtype 'F64'"),
    ("params/bn.bias", "dtype", "BF16", "unsupported dtype 'BF16'"),
    ("params/bn.bias", "dtype", ["F32"], "unsupported dtype"),
    ("params/bn.bias", "dtype", DELETE, "unsupported dtype None"),
    ("params/bn.bias", "shape", [-4], "shape"),
    ("params/bn.bias", "shape", [4.0], "shape"),
    ("params/bn.bias", "shape", "4", "shape"),
    ("params/bn.bias", "shape", [1] * 9, "shape"),
    ("params/bn.bias", "shape", [2**40], "shape"),
    ("params/bn.bias", "shape", [0, 2**70], "shape"),
    ("params/bn.bias", "shape", [2**31 - 1] * 2, "needs 18446744056529682436 bytes"),
    ("params/bn.bias", "shape", [8], "needs 32 bytes, offsets give 16"),
    ("params/bn.bias", "data_offsets", [0], "data_offsets"),
    ("params/bn.bias", "data_offsets", [-16, 0], "data_offsets"),
    ("params/bn.bias", "data_offsets", [16, 0], "needs 16 bytes, offsets give -16"),
    ("params/bn.bias", "data_offsets", [2**62, 2**62 + 16], "starts at byte|tensors cover"),
    ("params/bn.bias", "data_offsets", [0, 16], "overlaps"),
    ("params/bn.bias", "data_offsets", DELETE, "data_offsets None"),
    ("golden/inputs", "shape", [2**31 - 1, 3, 12, 12], "needs"),
    ("spaces/conv", "shape", [2**30], "needs"),
]


def _table_edit(name: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(header: dict[str, Any]) -> None:
        if value is DELETE:
            del header[name][key]
        else:
            header[name][key] = value

    return edit


def _grow(name: str, count: int) -> Callable[[dict[str, Any]], None]:
    """A tensor claiming ``count`` elements with consistent offsets: only the tiling check is left."""

    def edit(header: dict[str, Any]) -> None:
        begin = header[name]["data_offsets"][0]
        header[name]["shape"] = [count]
        header[name]["data_offsets"] = [begin, begin + 4 * count]

    return edit


def _poke(name: str, index: int, value: float) -> Callable[[Parts], None]:
    def edit(parts: Parts) -> None:
        array = parts.tensor(name)
        array.reshape(-1)[index] = value
        parts.set_tensor(name, array)

    return edit


def targeted_cases(seeds: dict[str, bytes]) -> list[Case]:
    """Named mutants of every section of docs/FORMAT.md §2-§6, each with the message it must give."""
    parts = {name: Parts.split(blob) for name, blob in seeds.items()}
    cases: list[Case] = []

    def resigned(seed: str, label: str, category: str, expect: str, edit: Edit, allowance: int = 10) -> None:
        mutated = parts[seed].copy()
        edit(mutated.meta)
        cases.append(Case(f"{seed}: {label}", category, mutated.build(), expect, allowance))

    for seed, path, value, expect in FIELD_LIES:
        label = f"{path} deleted" if value is DELETE else f"{path} = {_short(value)}"
        resigned(seed, label, path.split("/")[0], expect, setting(path, value))
    for seed, label, expect, edit, allowance in GRAPH_LIES:
        resigned(seed, label, "graph", expect, edit, allowance)

    # §2: the container. The tensor table is not covered by the checksum.
    blob = seeds["allops"]
    (n,) = struct.unpack_from("<Q", blob, 0)
    header, data = json.loads(blob[8 : 8 + n]), blob[8 + n :]

    def container(label: str, expect: str, raw: bytes) -> None:
        cases.append(Case(f"allops: {label}", "container", raw, expect))

    def table(label: str, expect: str, edit: Callable[[dict[str, Any]], None]) -> None:
        mutated = copy.deepcopy(header)
        edit(mutated)
        container(label, expect, container_bytes(dumps(mutated, sort_keys=False).encode(), data))

    for name, key, value, expect in TABLE_LIES:
        table(f"tensor {name} {key} = {_short(value)}", expect, _table_edit(name, key, value))
    table("space of 2^30 buckets, offsets consistent", "overlaps", _grow("spaces/conv", 2**30))
    table("tensor entry not an object", "not an object", lambda h: h.__setitem__("params/bn.bias", [1]))
    table("tensor name with a space", "not allowed", lambda h: h.__setitem__("a b", h.pop("params/bn.bias")))
    table(
        "tensor name of 300 chars", "not allowed", lambda h: h.__setitem__("a" * 300, h.pop("params/bn.bias"))
    )
    table("tensor entry removed", "leaves a gap", lambda h: h.pop("params/bn.bias"))
    table(
        "F32[4] read as F16[8]",
        "metadata declares",
        lambda h: h["params/bn.bias"].update(dtype="F16", shape=[8]),
    )
    table("__metadata__ missing", "__metadata__", lambda h: h.pop("__metadata__"))
    table("__metadata__ not strings", "__metadata__", lambda h: h["__metadata__"].update(x=1))
    table("hashpack key missing", "not a hashpack file", lambda h: h["__metadata__"].pop("hashpack"))
    table("checksum key missing", "not a hashpack file", lambda h: h["__metadata__"].pop("hashpack.sha256"))
    for length, expect in [
        (2**64 - 1, "header length"),
        (16 * MiB + 1, "header length"),
        (len(blob), "truncated"),
    ]:
        container(f"header length {length}", expect, struct.pack("<Q", length) + blob[8:])
    for length in (0, n - 40):
        container(f"header length {length}", "header is not valid", struct.pack("<Q", length) + blob[8:])
    text = blob[8 : 8 + n]
    duplicated = text.replace(b'"golden/inputs":{', b'"golden/inputs":{"dtype":"F32"},"golden/inputs":{', 1)
    for label, raw, expect in [
        ("header of invalid UTF-8", b'{"\xff\xfe": 1}', "not valid UTF-8"),
        ("header is a JSON list", b"[]", "header is not a JSON object"),
        ("header nested 100000 deep", b"[" * 100_000 + b"]" * 100_000, "not valid UTF-8 JSON"),
        ("header with NaN", b'{"__metadata__": {}, "t": {"shape": [NaN]}}', "non-finite"),
        ("header with a 4301-digit number", b'{"t": ' + b"9" * 4301 + b"}", "not valid UTF-8 JSON"),
        ("header with a duplicate tensor", duplicated, "duplicate key 'golden/inputs'"),
    ]:
        container(label, expect, container_bytes(raw, data if raw is duplicated else b""))
    container("trailing bytes", "trailing bytes", blob + b"\0" * 8)
    container("data cut by 4 bytes", "truncated file", blob[:-4])

    def edited(
        seed: str, label: str, category: str, expect: str, edit: Callable[[Parts], Any], sign: bool = True
    ) -> None:
        mutated = parts[seed].copy()
        edit(mutated)
        cases.append(Case(f"{seed}: {label}", category, mutated.build(sign=sign), expect))

    edited(
        "allops",
        "tensor removed with its bytes",
        "tensors",
        "'params/bn.bias' is missing",
        lambda p: p.drop_tensor("params/bn.bias"),
    )
    edited(
        "allops",
        "unreferenced tensor",
        "tensors",
        "'extra' is not referenced",
        lambda p: p.set_tensor("extra", np.zeros(3, np.float32)),
    )
    for label, value in [("NaN", np.nan), ("+inf", np.inf), ("-inf", -np.inf)]:
        edited("mlp", f"{label} bucket", "non-finite", "NaN or infinite", _poke("spaces/1", 5, value))
        edited(
            "mlp",
            f"{label} golden output",
            "non-finite",
            "NaN or infinite",
            _poke("golden/outputs", 0, value),
        )
        edited(
            "allops",
            f"{label} dense param",
            "non-finite",
            "NaN or infinite",
            _poke("params/bn.bias", 0, value),
        )
    edited(
        "mobilenet-fp16-nogolden",
        "float16 inf bucket",
        "non-finite",
        "NaN or infinite",
        _poke("spaces/fc", 0, np.inf),
    )
    edited(
        "mlp",
        "golden output row added",
        "golden",
        "golden outputs",
        lambda p: p.set_tensor("golden/outputs", np.zeros((2, 11), np.float32)),
    )
    edited(
        "mlp",
        "buckets grown consistently (valid)",
        "space",
        "",
        lambda p: (
            p.meta["spaces"]["1"].update(size=2439),
            p.set_tensor("spaces/1", np.ones(2439, np.float32)),
        ),
    )

    # §2: the checksum, and metadata text the JSON parser must refuse
    edited(
        "mlp",
        "data bit flip, not re-signed",
        "checksum",
        "checksum mismatch",
        lambda p: setattr(p, "data", bit_flips(p.data, random.Random(0))),
        sign=False,
    )
    edited(
        "mlp",
        "producer changed, not re-signed",
        "checksum",
        "checksum mismatch",
        lambda p: p.meta.update(producer="x"),
        sign=False,
    )
    for label, checksum in [
        ("uppercase", parts["mlp"].checksum.upper()),
        ("empty", ""),
        ("not hex", "z" * 64),
    ]:
        edited(
            "mlp",
            f"checksum {label}",
            "checksum",
            "checksum mismatch",
            lambda p, c=checksum: setattr(p, "checksum", c),
            sign=False,
        )
    meta_text = parts["mlp"].meta_text()
    for label, bad, expect in [
        ("not JSON", meta_text[:-1], "metadata is not valid"),
        ("a JSON list", "[]", "metadata is not a JSON object"),
        ("with a NaN literal", meta_text.replace('"version":1', '"version":NaN'), "non-finite"),
        (
            "with a duplicate key",
            meta_text.replace('"version":1', '"version":1,"version":1'),
            "duplicate key 'version'",
        ),
        ("with a lone surrogate", meta_text.replace('"hashpack 0.1.0"', '"\\ud800"'), "not valid UTF-8"),
        ("nested 100000 deep", meta_text[:-1] + ',"x":' + "[" * 100_000 + "]" * 100_000 + "}", "not valid"),
    ]:
        cases.append(Case(f"mlp: metadata {label}", "metadata", parts["mlp"].build(meta_text=bad), expect))
    return cases


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def is_huge(case: Case) -> bool:
    """A case declaring sizes far beyond its file (its label holds a number of 7+ digits or 2^k)."""
    return bool(re.search(r"\d{7,}|2\^|4096, 4096", case.name))


def expect_outcome(case: Case, outcome: Outcome) -> str | None:
    """Why ``outcome`` is not what ``case`` expects, or None."""
    if not outcome.ok:
        return f"contract violation: {outcome.kind}: {outcome.message}"
    if not case.expect:
        return None if outcome.status == "accepted" else f"expected to load and run, got {outcome.message}"
    if outcome.status == "accepted":
        return f"accepted, expected an error matching {case.expect!r}"
    if not re.search(case.expect, outcome.message[len(SOURCE) + 2 :]):
        return f"message {outcome.message!r} does not match {case.expect!r}"
    return None


# Hostile values shared by tests/test_fuzz_reader.py and benchmarks/fuzz_reader.py.
SPECIAL_FLOATS: list[float] = [np.nan, np.inf, -np.inf, 3.4e38, -0.0, 1e-45, 65504.0]
TABLE_VALUES: list[Any] = [
    None,
    -1,
    0,
    1,
    2**31,
    2**64,
    1.5,
    "F32",
    "F16",
    "I8",
    "x",
    [],
    [0],
    [2**62],
    [0, 0],
    [2**31 - 1] * 3,
]
