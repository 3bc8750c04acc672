"""The numpy runtime must run where torch is not installed: it imports numpy and the stdlib only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[1] / "runtime"
ALLOWED = {"numpy"} | set(sys.stdlib_module_names)


def test_import_leaves_torch_unloaded() -> None:
    code = (
        "import sys, hashpack.runtime, hashpack.runtime.summary;"
        "bad = [m for m in ('torch', 'onnx', 'onnxruntime', 'click', 'rich') if m in sys.modules];"
        "assert not bad, bad; print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_runtime_sources_import_only_numpy_and_stdlib() -> None:
    offenders = []
    for path in RUNTIME.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] not in ALLOWED]
    assert not offenders, offenders
