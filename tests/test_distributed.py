"""``torchrun --nproc_per_node=2 -m hashpack train``: two processes train together, rank 0 writes once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from hashpack.data import load_dataset
from hashpack.runtime import load

# Loaded by every Python process through PYTHONPATH: records which rank calls pack().
SITECUSTOMIZE = textwrap.dedent(
    """
    import os
    if "RANK" in os.environ and os.environ.get("PACK_LOG"):
        import hashpack.workflow as workflow
        original = workflow.pack
        def counting_pack(*args, **kwargs):
            with open(os.environ["PACK_LOG"], "a") as log:
                log.write(os.environ["RANK"] + "\\n")
            return original(*args, **kwargs)
        workflow.pack = counting_pack
    """
)


def test_two_processes_write_one_valid_file_once(tmp_path: Path) -> None:
    digits = load_dataset("digits")
    data = tmp_path / "small.npz"
    np.savez(data, x_train=digits.x_train[:512], y_train=digits.y_train[:512], x_test=digits.x_test[:128],
             y_test=digits.y_test[:128])  # fmt: skip
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    log = tmp_path / "pack.log"
    env = {**os.environ, "PYTHONPATH": str(hooks), "PACK_LOG": str(log), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "hashpack", "train", "--arch", "mlp", "--dataset", str(data), "--epochs", "6",
        "--lr", "1e-2", "--json", "-o", str(out_dir / "ddp.hpk"),
    ]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)  # exactly one JSON document: only rank 0 prints
    assert report["processes"] == 2
    assert log.read_text().split() == ["0"]  # pack() ran once, on rank 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["ddp.hpk"]  # no temporary files left
    runtime = load(out_dir / "ddp.hpk")
    accuracy = (runtime.run(digits.x_test[:128]).argmax(1) == digits.y_test[:128]).mean()
    assert accuracy == report["test_accuracy"] and accuracy > 0.5  # chance is 0.1
