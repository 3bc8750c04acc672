"""The web demo in a real browser: headless Debian Chromium runs the compact ONNX export with onnxruntime-web.

The page is written by `hashpack export --web-demo` for the `hashpack demo` model (HashedNets LeNet-300-100
on scikit-learn's digits), served from 127.0.0.1, and checked against the numpy runtime: predictions for a
shipped test image and for digits drawn with the mouse, the golden check (and that a wrong stored output
makes it fail), the timing table, and that nothing is fetched from anywhere but the local server.
Set HASHPACK_WEB_DEMO_SCREENSHOT=web_demo/screenshot.png to refresh the README's screenshot.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from web_demo_tools import chromium, load_builder, static_server

from hashpack.cli import main
from hashpack.runtime import load
from hashpack.workflow import run_demo

READY_TIMEOUT_MS = 120_000
# Strokes in pad pixels (the pad is 256×256): a seven and a four, as a user would draw them.
SEVEN = [[(60, 40), (196, 40), (110, 226)]]
FOUR = [[(150, 30), (60, 150), (200, 150)], [(160, 90), (160, 226)]]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Train the demo model and write its web demo through the CLI."""
    work = tmp_path_factory.mktemp("web_demo")
    report = run_demo(work / "model", epochs=30)
    assert report["golden_ok"]
    hpk = Path(report["path"])
    directory = work / "site"
    result = CliRunner().invoke(
        main,
        [
            "export",
            str(hpk),
            "--format",
            "onnx",
            "-o",
            str(work / "m.onnx"),
            "--web-demo",
            str(directory),
            "--json",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["web_demo"] == str(directory)
    return {"dir": directory, "hpk": hpk, "model": load(hpk)}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def _open(browser: Any, directory: Path, query: str = "") -> Iterator[tuple[Any, list[str], list[str]]]:
    """A fresh page on ``directory``'s demo; yields (page, requested URLs, page errors)."""
    with static_server(directory) as base:
        context = browser.new_context(viewport={"width": 1000, "height": 1000})
        page = context.new_page()
        requests: list[str] = []
        errors: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(base + "index.html" + query)
        page.wait_for_selector(
            "#status[data-state=ready], #status[data-state=error]", timeout=READY_TIMEOUT_MS
        )
        assert page.get_attribute("#status", "data-state") == "ready", page.text_content("#status")
        try:
            yield page, [url for url in requests if not url.startswith(base)], errors
        finally:
            context.close()


@pytest.fixture
def demo_page(browser: Any, site: dict[str, Any]) -> Iterator[tuple[Any, list[str], list[str]]]:
    yield from _open(browser, site["dir"])


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


def _draw(page: Any, strokes: list[list[tuple[int, int]]]) -> None:
    page.click("#clear")
    box = page.locator("#pad").bounding_box()
    for stroke in strokes:
        page.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
        page.mouse.down()
        for (x0, y0), (x1, y1) in itertools.pairwise(stroke):
            for step in range(1, 11):
                page.mouse.move(box["x"] + x0 + (x1 - x0) * step / 10, box["y"] + y0 + (y1 - y0) * step / 10)
        page.mouse.up()


def _page_matches_numpy(page: Any, model: Any, values: list[float]) -> int:
    """Run ``values`` through the page's session and the numpy runtime; returns the class both predict."""
    result = page.evaluate("(values) => window.hashpackDemo.predict(values)", values)
    x = np.asarray(values, dtype=np.float32).reshape(1, *model.input_shape[1:])
    logits = model.run(x)[0]
    np.testing.assert_allclose(result["logits"], logits, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(result["probabilities"], _softmax(logits.astype(np.float64)), atol=1e-5)
    assert result["classIndex"] == int(logits.argmax())
    return int(result["classIndex"])


def test_site_holds_exports_golden_data_and_pinned_runtime(site: dict[str, Any], tmp_path: Path) -> None:
    directory, model = site["dir"], site["model"]
    builder = load_builder()
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["model_bytes"] == (directory / "model.onnx").stat().st_size
    assert manifest["expanded_bytes"] == (directory / "model.expanded.onnx").stat().st_size
    assert manifest["model_bytes"] * 4 < manifest["expanded_bytes"]
    pinned = json.loads((builder.HERE / "package.json").read_text())["dependencies"]["onnxruntime-web"]
    assert manifest["onnxruntime_web"] == pinned
    golden = json.loads((directory / "golden.json").read_text())
    np.testing.assert_array_equal(np.asarray(golden["inputs"], np.float32), model.golden_inputs.ravel())
    np.testing.assert_array_equal(np.asarray(golden["outputs"], np.float32), model.golden_outputs.ravel())
    assert golden["input_shape"] == list(model.golden_inputs.shape)
    for name in builder.ORT_FILES:
        assert (directory / name).read_bytes() == (builder.ORT_PACKAGE / "dist" / name).read_bytes()
    for name in ("index.html", "app.js"):  # the page itself names no remote host
        assert (
            "http://" not in (directory / name).read_text()
            and "https://" not in (directory / name).read_text()
        )
    again = tmp_path / "again"
    builder.write_web_demo(site["hpk"], again)
    for path in directory.iterdir():
        assert (again / path.name).read_bytes() == path.read_bytes(), (
            f"{path.name} differs between two writes"
        )


def test_shipped_digit_predicted_and_golden_check_passes(demo_page: tuple, site: dict[str, Any]) -> None:
    page, foreign, errors = demo_page
    assert page.text_content("#golden-status") == "pass"
    assert page.get_attribute("#golden-status", "data-state") == "pass"
    assert page.text_content("#golden-detail").startswith(f"{len(site['model'].golden_inputs)}/")
    samples = json.loads((site["dir"] / "samples.json").read_text())["samples"]
    assert sorted(sample["label"] for sample in samples) == list(range(10))
    three = next(i for i, sample in enumerate(samples) if sample["label"] == 3)
    page.locator("#samples button").nth(three).click()
    page.wait_for_function("document.getElementById('prediction').textContent !== '–'")
    assert page.text_content("#prediction") == "3"
    assert _page_matches_numpy(page, site["model"], samples[three]["values"]) == 3
    for sample in samples:  # every shipped image: the browser agrees with the numpy runtime
        _page_matches_numpy(page, site["model"], sample["values"])
    assert foreign == [] and errors == []


def test_drawn_digits_predicted(demo_page: tuple, site: dict[str, Any]) -> None:
    page, foreign, errors = demo_page
    for strokes, label in ((SEVEN, "7"), (FOUR, "4")):
        _draw(page, strokes)
        page.wait_for_function(
            f"document.getElementById('prediction').textContent === '{label}'", timeout=10_000
        )
        drawn = page.evaluate("window.hashpackDemo.input")
        assert len(drawn) == 64 and min(drawn) >= 0 and max(drawn) <= 1
        assert _page_matches_numpy(page, site["model"], drawn) == int(label)
    assert foreign == [] and errors == []


def test_wrong_stored_output_fails_the_golden_check(
    browser: Any, site: dict[str, Any], tmp_path: Path
) -> None:
    tampered = tmp_path / "site"
    shutil.copytree(site["dir"], tampered)
    golden = json.loads((tampered / "golden.json").read_text())
    golden["outputs"][5] += 0.01
    (tampered / "golden.json").write_text(json.dumps(golden))
    for page, _, _ in _open(browser, tampered):
        assert page.text_content("#golden-status") == "FAIL"
        assert page.text_content("#golden-detail").startswith(f"{len(site['model'].golden_inputs) - 1}/")


def test_timing_table_and_screenshot(demo_page: tuple, site: dict[str, Any], tmp_path: Path) -> None:
    page, foreign, errors = demo_page
    _draw(page, SEVEN)
    page.wait_for_function("document.getElementById('prediction').textContent === '7'", timeout=10_000)
    page.click("#measure")
    page.wait_for_function(
        "document.querySelector('#row-expanded .latency').textContent !== '–' && "
        "!document.getElementById('measure').disabled",
        timeout=READY_TIMEOUT_MS,
    )
    for row, name in (("compact", "model.onnx"), ("expanded", "model.expanded.onnx")):
        shown = page.text_content(f"#row-{row} .bytes").replace(",", "")
        assert int(shown) == (site["dir"] / name).stat().st_size
        for cell in ("create", "latency"):
            assert float(page.text_content(f"#row-{row} .{cell}").split()[0]) > 0
    assert "compact/expanded" in page.text_content("#timing-note")
    target = Path(os.environ.get("HASHPACK_WEB_DEMO_SCREENSHOT", tmp_path / "screenshot.png"))
    page.screenshot(path=str(target), full_page=True)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert foreign == [] and errors == []


def test_web_demo_option_is_onnx_only(site: dict[str, Any], tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "export",
            str(site["hpk"]),
            "--format",
            "tflite",
            "-o",
            str(tmp_path / "m.tflite"),
            "--web-demo",
            "x",
        ],
    )
    assert result.exit_code == 2
    assert result.output.strip() == "error: --web-demo applies to --format onnx only"


def test_missing_onnxruntime_web_is_one_clear_error(site: dict[str, Any], tmp_path: Path) -> None:
    builder = load_builder()
    builder.ORT_PACKAGE = tmp_path / "node_modules" / "onnxruntime-web"  # as before `make web-demo-deps`
    with pytest.raises(builder.WebDemoError, match=r"lacks ort\.wasm\.min\.js.*make web-demo-deps"):
        builder.write_web_demo(site["hpk"], tmp_path / "site")
    assert not (tmp_path / "site").exists()


def test_model_without_an_image_input_is_refused(tmp_path: Path) -> None:
    import torch

    from hashpack import pack

    path = tmp_path / "flat.hpk"
    pack(torch.nn.Sequential(torch.nn.Linear(64, 10)).eval(), torch.zeros(2, 64), path)
    builder = load_builder()
    with pytest.raises(
        builder.WebDemoError, match=r"flat\.hpk: the web demo needs a single-channel image input"
    ):
        builder.write_web_demo(path, tmp_path / "site")
    assert not (tmp_path / "site").exists()


def test_expanded_file_page(browser: Any, site: dict[str, Any]) -> None:
    """?model=expanded runs the dense file (the cold-start comparison): same golden check, same answer."""
    samples = json.loads((site["dir"] / "samples.json").read_text())["samples"]
    for page, foreign, errors in _open(browser, site["dir"], "?model=expanded"):
        assert "model.expanded.onnx" in page.text_content("#status")
        assert page.text_content("#golden-status") == "pass"
        assert page.text_content("#row-expanded .create").endswith("*")
        assert page.text_content("#row-compact .create") == "–"
        for sample in samples:
            _page_matches_numpy(page, site["model"], sample["values"])
        assert foreign == [] and errors == []
