"""No code execution on a load path: no pickle (or its relatives), ``torch.load`` only with
``weights_only=True``, ``np.load`` only with ``allow_pickle=False``, no eval/exec of strings."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("runtime", "exporter", "hashpack")
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "marshal", "shelve", "joblib"}
# call -> (keyword, value it must have)
GUARDED_CALLS = {
    ("torch", "load"): ("weights_only", True),
    ("np", "load"): ("allow_pickle", False),
    ("numpy", "load"): ("allow_pickle", False),
}


def sources() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def _dotted(node: ast.expr) -> tuple[str, ...]:
    if isinstance(node, ast.Attribute):
        return (*_dotted(node.value), node.attr)
    if isinstance(node, ast.Name):
        return (node.id,)
    return ("<expression>",)  # f().eval() is a method, not the builtin


def findings(tree: ast.AST) -> list[str]:
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            problems += [f"import {a.name}" for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in UNSAFE_MODULES:
            problems.append(f"from {node.module} import ...")
        elif isinstance(node, ast.ImportFrom) and node.module in ("torch", "numpy"):
            problems += [f"from {node.module} import load" for a in node.names if a.name == "load"]
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in (("eval",), ("exec",)):
                problems.append(f"{name[0]}() at line {node.lineno}")
            guard = GUARDED_CALLS.get(name[-2:])
            if guard is not None:
                keyword, required = guard
                values = [k.value for k in node.keywords if k.arg == keyword]
                if not (values and isinstance(values[0], ast.Constant) and values[0].value is required):
                    problems.append(f"{'.'.join(name)}() without {keyword}={required} at line {node.lineno}")
    return problems


def test_sources_are_found() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in sources()}
    assert {"runtime/hpk.py", "runtime/container.py", "hashpack/cli.py", "hashpack/data.py"} <= names
    assert any(name.startswith("exporter/") for name in names)


@pytest.mark.parametrize("path", sources(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_pickle_and_safe_loads(path: Path) -> None:
    assert not findings(ast.parse(path.read_text(), str(path))), findings(ast.parse(path.read_text()))


@pytest.mark.parametrize(
    "code",
    [
        "import pickle",
        "from dill import loads",
        "import marshal as m",
        "torch.load(f)",
        "torch.load(f, weights_only=False)",
        "np.load(f)",
        "numpy.load(f, allow_pickle=True)",
        "from numpy import load",
        "eval(text)",
        "exec(code)",
    ],
)
def test_the_scan_catches(code: str) -> None:
    assert findings(ast.parse(code))


@pytest.mark.parametrize(
    "code",
    ["torch.load(f, weights_only=True)", "np.load(f, allow_pickle=False)", "model.eval()", "f().eval()"],
)
def test_the_scan_allows(code: str) -> None:
    assert not findings(ast.parse(code))
