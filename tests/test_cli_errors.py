"""CLI error handling: missing paths, directories, wrong file types, unwritable outputs, bad option
values each give one line ``error: ...`` on stderr and exit code 2, with no traceback (``--debug``
shows it). Every ``train`` case here must fail before any training starts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner, Result
from onnx import TensorProto, helper

from hashpack.cli import main


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), prog_name="hashpack")


def assert_one_line_error(result: Result, pattern: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception  # not an uncaught error
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in result.output


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {
        "text": tmp_path / "notes.txt",
        "empty": tmp_path / "empty.hpk",
        "onnx": tmp_path / "model.onnx",
        "json": tmp_path / "model.hpk.json",
        "a_file": tmp_path / "plain",
        "tflite": tmp_path / "model.tflite",
    }
    paths["text"].write_text("hello, this is not a model\n")
    paths["empty"].write_bytes(b"")
    paths["json"].write_text('{"format": "hashpack"}')
    paths["a_file"].write_text("x")
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    paths["onnx"].write_bytes(helper.make_model(graph).SerializeToString())
    onnx.checker.check_model(str(paths["onnx"]))
    # a flatbuffer root offset, then the TFLite file identifier, then zeros
    paths["tflite"].write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))
    return paths


@pytest.mark.parametrize(
    ("which", "pattern"),
    [
        ("text", r"notes\.txt: not a \.hpk file: header length"),
        ("empty", r"empty\.hpk: truncated: 0 bytes"),
        ("onnx", r"model\.onnx: not a \.hpk file \(it looks like an ONNX model\)"),
        ("tflite", r"model\.tflite: not a \.hpk file \(it is a TFLite flatbuffer\)"),
        ("json", r"model\.hpk\.json: not a \.hpk file"),
    ],
)
def test_inspect_wrong_file_types(files: dict[str, Path], which: str, pattern: str) -> None:
    assert_one_line_error(invoke("inspect", str(files[which])), pattern)


def test_inspect_missing_path_and_directory(tmp_path: Path) -> None:
    assert_one_line_error(invoke("inspect", str(tmp_path / "nope.hpk")), r"nope\.hpk: no such \.hpk file")
    assert_one_line_error(invoke("inspect", str(tmp_path)), r"is a directory")
    assert_one_line_error(invoke("inspect"), r"Missing argument 'FILE'.*hashpack inspect --help")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_inspect_special_files_do_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.hpk"
    os.mkfifo(fifo)
    assert_one_line_error(invoke("inspect", str(fifo)), r"pipe\.hpk: not a regular file")
    if Path("/dev/zero").exists():
        assert_one_line_error(invoke("inspect", "/dev/zero"), r"/dev/zero: not a regular file")


def test_inspect_corrupt_hpk(tmp_path: Path) -> None:
    import numpy as np

    from hashpack.runtime import HpkFile, ValueInfo, write_hpk
    from hashpack.runtime.hpk import Node, Param

    hpk = HpkFile(
        inputs=[ValueInfo("x", (None, 4))],
        outputs=[ValueInfo("y", (None, 3))],
        spaces={},
        params={"w": Param("w", "dense", (3, 4), {"tensor": "params/w"})},
        nodes=[Node("Linear", "fc", ("x",), ("y",), {"weight": "w"}, {})],
        tensors={"params/w": np.ones((3, 4), np.float32)},
    )
    path = tmp_path / "m.hpk"
    write_hpk(hpk, path)
    assert invoke("inspect", str(path)).exit_code == 0
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0x40
    path.write_bytes(bytes(blob))
    assert_one_line_error(invoke("inspect", str(path)), r"m\.hpk: checksum mismatch")


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["--compression", "abc"], r"--compression 'abc': expected a fraction"),
        (["--compression", "1/0"], r"--compression '1/0': expected a fraction"),
        (["--compression", "0x"], r"--compression '0x': expected a fraction"),
        (["--compression", "1e-400x"], r"--compression '1e-400x': expected a fraction"),
        (["--compression", "2"], r"--compression '2': must be in \(0, 1\]"),
        (["--compression", "-1/8"], r"--compression '-1/8': must be in \(0, 1\]"),
        (["--compression", ""], r"--compression '': expected a fraction"),
        (["--arch", "vgg"], r"--arch 'vgg': unknown architecture \(choose from mlp"),
        (["--method", "pruning"], r"--method 'pruning': unknown method \(choose from dense, hashed"),
        (["--dataset", "imagenet"], r"unknown dataset 'imagenet'"),
        (["--dataset", "missing.npz"], r"missing\.npz: no such file"),
        (["--epochs", "abc"], r"Invalid value for '--epochs'.*hashpack train --help"),
        (["--epochs", "0"], r"Invalid value for '--epochs'"),
        (["--seed", "-1"], r"Invalid value for '--seed'"),
        (["--lr", "0"], r"Invalid value for '--lr'"),
        (["--nope"], r"No such option '--nope'"),
        (
            ["--hashes", "20", "--method", "funhash"],
            r"Invalid value for '--hashes': 20 is not in the range 1<=x<=16",
        ),
        (
            ["--method", "funhash", "--dual-space", "--hashes", "1"],
            r"--method funhash: dual_space needs hashes",
        ),
        (
            ["--method", "funhash", "--hidden", "0"],
            r"--method funhash: hidden=0 \(g = identity\) needs hashes=1",
        ),
        (
            ["--arch", "lenet5", "--method", "fresh", "--alpha", "-1"],
            r"--method fresh: alpha and beta must be positive",
        ),
    ],
)
def test_train_bad_options(tmp_path: Path, args: list[str], pattern: str) -> None:
    out = tmp_path / "m.hpk"
    assert_one_line_error(invoke("train", *args, "-o", str(out)), pattern)
    assert not out.exists()


def test_train_missing_or_bad_output(tmp_path: Path, files: dict[str, Path]) -> None:
    assert_one_line_error(invoke("train"), r"Missing option '-o'")
    assert_one_line_error(invoke("train", "-o", str(tmp_path)), r"is a directory")
    assert_one_line_error(
        invoke("train", "-o", str(tmp_path / "no" / "m.hpk")), r"directory .* does not exist"
    )
    assert_one_line_error(invoke("train", "-o", str(files["a_file"] / "m.hpk")), r"does not exist")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc (a directory nobody can write in)")
def test_train_unwritable_output_fails_before_training() -> None:
    """/proc refuses new files even to root (CI runs as root, so a chmod'ed directory would not do)."""
    assert_one_line_error(invoke("train", "-o", "/proc/m.hpk"), r"/proc/m\.hpk: cannot write in /proc")


def test_unknown_command_and_option() -> None:
    assert_one_line_error(invoke("frobnicate"), r"No such command 'frobnicate'")
    assert_one_line_error(invoke("--nope", "inspect", "x"), r"No such option '--nope'")


def test_export_errors(files: dict[str, Path], tmp_path: Path) -> None:
    assert_one_line_error(
        invoke("export", str(tmp_path / "x.hpk"), "--format", "onnx"), r"no such \.hpk file"
    )
    assert_one_line_error(
        invoke("export", str(files["text"]), "--format", "bogus"), r"Invalid value for '--format'"
    )
    assert_one_line_error(invoke("export", str(files["text"]), "--format", "onnx"), r"not a \.hpk file")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hashpack", *args], capture_output=True, text=True, check=False, timeout=300
    )


def test_real_process_prints_one_line_and_debug_shows_the_traceback(files: dict[str, Path]) -> None:
    plain = _cli("inspect", str(files["onnx"]))
    assert plain.returncode == 2
    assert plain.stderr.count("\n") == 1 and plain.stderr.startswith("error: "), plain.stderr
    assert "Traceback" not in plain.stderr + plain.stdout
    debug = _cli("--debug", "inspect", str(files["onnx"]))
    assert debug.returncode == 2
    assert "Traceback (most recent call last)" in debug.stderr
    assert "HpkFormatError" in debug.stderr
    assert debug.stderr.rstrip().splitlines()[-1].startswith("error: ")
