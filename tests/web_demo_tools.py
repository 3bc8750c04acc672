"""Shared by the browser test and benchmarks/web_demo.py: load web_demo/build.py, serve a directory, start Chromium.

web_demo/ is not a package of the wheel (the page and its npm files live in the source checkout), so its
builder is loaded from its path. Chromium is Debian's (/usr/bin/chromium, `make system-deps`), driven by
Playwright's Python API; Playwright's own browser download is never used.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BUILDER = ROOT / "web_demo" / "build.py"
CHROMIUM = Path("/usr/bin/chromium")
# Headless as root, and no background connections (this machine's network is closed; see the env notes).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def load_builder() -> ModuleType:
    """web_demo/build.py as a module (``write_web_demo``, ``WebDemoError``, ``ORT_FILES``)."""
    spec = importlib.util.spec_from_file_location("hashpack_web_demo_build", BUILDER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _IsolatingHandler(_QuietHandler):
    """Sends COOP/COEP, so the page is cross-origin isolated and performance.now() ticks in 5 µs, not 100 µs."""

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()


@contextmanager
def static_server(directory: Path, isolated: bool = False) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 at a free port; yields the base URL.

    ``isolated`` adds the cross-origin isolation headers (the benchmark's finer timer); the page itself
    needs none and the test serves it plain, as any static server would.
    """
    handler = functools.partial(_IsolatingHandler if isolated else _QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium driven by Playwright (yields the Browser)."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.is_file():
        raise RuntimeError(f"{CHROMIUM} not found: install Debian's chromium (`make system-deps`)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
