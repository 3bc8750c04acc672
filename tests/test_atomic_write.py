"""Atomic writes (docs/FORMAT.md §7): a writer killed mid-write leaves the old file intact and no
temporary file behind; a failed write cleans up; new files get the usual permissions."""

from __future__ import annotations

import contextlib
import errno
import os
import random
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hashpack.runtime import HpkFile, HpkFormatError, ValueInfo, container, read_hpk, write_hpk
from hashpack.runtime.hpk import Node, Param

pytestmark = pytest.mark.skipif(os.name != "posix", reason="kills writers with SIGKILL")

OLD = b"the old file, complete\n" * 100

# Writes ``size`` bytes to argv[1] with atomic_write_bytes (or a .hpk with write_hpk); with
# "slow", os.write writes 4 KiB at a time and says "writing" after the first chunk, then dawdles;
# otherwise it says "start" just before writing. It says "done" when the write returned.
WRITER = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    from hashpack.runtime import container, write_hpk, HpkFile, ValueInfo
    from hashpack.runtime.hpk import Node, Param

    target, what, size, slow = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "slow"
    if slow:
        real_write = os.write

        def slow_write(fd, data):
            written = real_write(fd, bytes(data[:4096]))
            print("writing", flush=True)
            time.sleep(0.05)
            return written

        os.write = slow_write
    else:
        print("start", flush=True)  # imports done: the write begins now
    if what == "bytes":
        container.atomic_write_bytes(target, b"\\x01" * size)
    else:
        weight = np.ones((size // 4 // 64, 64), np.float32)
        write_hpk(HpkFile(
            inputs=[ValueInfo("x", (None, 64))], outputs=[ValueInfo("y", (None, weight.shape[0]))],
            spaces={}, params={"w": Param("w", "dense", weight.shape, {"tensor": "params/w"})},
            nodes=[Node("Linear", "fc", ("x",), ("y",), {"weight": "w"}, {})],
            tensors={"params/w": weight},
        ), target)
    print("done", flush=True)
    """
)


def start_writer(target: Path, what: str, size: int, slow: bool) -> subprocess.Popen[str]:
    args = [sys.executable, "-c", WRITER, str(target), what, str(size), "slow" if slow else "fast"]
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True)


@contextlib.contextmanager
def spy_on_tmpfile_opens(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Record the file descriptors of successful ``os.open(..., O_TMPFILE)`` calls.

    Without it the O_TMPFILE cases could silently run the named-file fallback (a filesystem
    without O_TMPFILE) and test the same path twice.
    """
    real_open, opened = os.open, []
    flag = getattr(os, "O_TMPFILE", 0)

    def spying_open(path: object, flags: int, *args: object, **kwargs: object) -> int:
        fd = real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]
        if flag and flags & flag == flag:
            opened.append(fd)
        return fd

    monkeypatch.setattr(os, "open", spying_open)
    try:
        yield opened
    finally:
        monkeypatch.setattr(os, "open", real_open)


def assert_no_temporary_files(directory: Path, target: Path) -> None:
    strays = [p.name for p in directory.iterdir() if p != target]
    assert not strays, strays
    assert not list(directory.glob(".*.tmp"))


@pytest.mark.parametrize("what", ["bytes", "hpk"])
def test_writer_killed_mid_write_leaves_old_file_and_no_temp(tmp_path: Path, what: str) -> None:
    target = tmp_path / "model.hpk"
    container.atomic_write_bytes(target, OLD)
    writer = start_writer(target, what, 4 << 20, slow=True)
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "writing"  # the first 4 KiB are on disk somewhere
    time.sleep(0.1)
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    assert target.read_bytes() == OLD
    assert_no_temporary_files(tmp_path, target)


def test_writer_killed_at_random_moments(tmp_path: Path) -> None:
    """Old file or complete new file, never a mix, never a stray temporary file.

    Kills land at random moments of the write itself: after the writer says "start" (its
    imports are done), within 0.9x the shortest of three uninterrupted writes measured first
    (the first write into a fresh directory is the slowest).
    """
    target = tmp_path / "model.hpk"
    size = 64 << 20
    durations = []
    for _ in range(3):
        calibration = start_writer(target, "bytes", size, slow=False)
        assert calibration.stdout is not None
        assert calibration.stdout.readline().strip() == "start"
        began = time.monotonic()
        assert calibration.stdout.readline().strip() == "done"
        durations.append(time.monotonic() - began)
        calibration.wait(timeout=30)
    duration = min(durations)
    rng = random.Random(0)
    mid_write = 0
    for _ in range(6):
        container.atomic_write_bytes(target, OLD)
        writer = start_writer(target, "bytes", size, slow=False)
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "start"
        time.sleep(rng.uniform(0.0, 0.9 * duration))
        writer.send_signal(signal.SIGKILL)
        rest = writer.communicate(timeout=30)[0]
        mid_write += writer.returncode == -signal.SIGKILL and "done" not in rest
        data = target.read_bytes()
        assert data == OLD or (len(data) == size and data == b"\x01" * size)
        assert_no_temporary_files(tmp_path, target)
    assert mid_write >= 1, f"no kill landed during a write (writes took {durations} s)"


def test_writer_that_finishes_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "model.hpk"
    container.atomic_write_bytes(target, OLD)
    writer = start_writer(target, "hpk", 1 << 16, slow=False)
    assert writer.communicate(timeout=120)[0].split() == ["start", "done"]
    assert read_hpk(target).params["w"].shape == (256, 64)
    assert_no_temporary_files(tmp_path, target)


@pytest.mark.parametrize("unnamed", [True, False], ids=["O_TMPFILE", "named-temp-file"])
def test_failed_write_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unnamed: bool) -> None:
    if not unnamed:
        monkeypatch.setattr(container, "_O_TMPFILE", 0)
    target = tmp_path / "model.hpk"
    with spy_on_tmpfile_opens(monkeypatch) as unnamed_opens:
        container.atomic_write_bytes(target, OLD)
    assert len(unnamed_opens) == (1 if unnamed else 0)  # the O_TMPFILE path really ran (or not)
    real_write = os.write
    calls = []

    def failing_write(fd: int, data: bytes) -> int:
        calls.append(fd)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, bytes(data[:10]))

    monkeypatch.setattr(os, "write", failing_write)
    with pytest.raises(OSError, match="No space left"):
        container.atomic_write_bytes(target, b"new" * 1000)
    monkeypatch.undo()
    assert target.read_bytes() == OLD
    assert_no_temporary_files(tmp_path, target)


@pytest.mark.parametrize("unnamed", [True, False], ids=["O_TMPFILE", "named-temp-file"])
def test_new_files_get_the_usual_permissions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unnamed: bool
) -> None:
    """0o666 minus the umask, like open(); not mkstemp's 0o600 (others could not read the model)."""
    if not unnamed:
        monkeypatch.setattr(container, "_O_TMPFILE", 0)
    previous = os.umask(0o022)
    try:
        with spy_on_tmpfile_opens(monkeypatch) as unnamed_opens:
            container.atomic_write_bytes(tmp_path / "a.hpk", b"x")
    finally:
        os.umask(previous)
    assert len(unnamed_opens) == (1 if unnamed else 0)
    assert stat.S_IMODE((tmp_path / "a.hpk").stat().st_mode) == 0o644
    assert (tmp_path / "a.hpk").read_bytes() == b"x"
    assert_no_temporary_files(tmp_path, tmp_path / "a.hpk")


def test_relative_path_in_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    container.atomic_write_bytes("plain.hpk", b"abc")
    assert (tmp_path / "plain.hpk").read_bytes() == b"abc"
    assert_no_temporary_files(tmp_path, tmp_path / "plain.hpk")


def test_write_hpk_refuses_an_invalid_file_and_writes_nothing(tmp_path: Path) -> None:
    hpk = HpkFile(
        inputs=[ValueInfo("x", (None, 4))],
        outputs=[ValueInfo("y", (None, 3))],
        spaces={},
        params={"w": Param("w", "dense", (3, 5), {"tensor": "params/w"})},  # 5 != 4 input features
        nodes=[Node("Linear", "fc", ("x",), ("y",), {"weight": "w"}, {})],
        tensors={"params/w": np.ones((3, 5), np.float32)},
    )
    with pytest.raises(HpkFormatError, match="does not fit weight"):
        write_hpk(hpk, tmp_path / "bad.hpk")
    assert list(tmp_path.iterdir()) == []
