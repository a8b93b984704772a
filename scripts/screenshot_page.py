"""Take docs/page.png: the web page answering "How many RDS instances are running in each
account?" (`make screenshot`).

Starts `opsagent serve` on the embedded sandbox on a free loopback port (or uses --url), opens
the page in headless Chromium (Debian's: `apt-get install chromium`; Playwright drives it,
never a browser of its own), asks the question, and saves a full-page screenshot.

    .venv/bin/python scripts/screenshot_page.py [--url URL] [--out docs/page.png]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "How many RDS instances are running in each account?"
WIDTH = 1100
# Headless Chromium here: as root no sandbox, and no background connections to Google.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve() -> Iterator[str]:
    """`opsagent serve` on the embedded sandbox, nothing configured: its URL."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSAGENT_", "AWS_"))}
    env["OPSAGENT_CHECKPOINT_URL"] = "memory://"
    opsagent = str(Path(sys.executable).with_name("opsagent"))
    with tempfile.TemporaryDirectory() as workdir:
        proc = subprocess.Popen(
            [opsagent, "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"opsagent serve exited with {proc.returncode}")
                try:
                    if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("opsagent serve did not answer /ping in 120 s")
                time.sleep(0.2)
            yield url
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def screenshot(url: str, out: Path, chromium: str, question: str = QUESTION) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 720})
            page.goto(url)
            page.locator("#question").fill(question)
            page.locator("#question").press("Enter")
            turn = page.locator("#conversation > .turn").last
            expect(turn).to_have_attribute("data-state", "done", timeout=120_000)
            expect(turn.locator(".chart")).to_be_visible()
            page.locator("#question").blur()  # no focus ring in the picture
            # A window as tall as the page, so the question box (sticky at the window's
            # bottom) sits below the answer, where it is once scrolled to the end.
            height = page.evaluate("document.documentElement.scrollHeight")
            page.set_viewport_size({"width": WIDTH, "height": height})
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out))
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running service (default: start one on the sandbox)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "page.png")
    parser.add_argument(
        "--chromium",
        default=os.environ.get("OPSAGENT_TEST_CHROMIUM") or shutil.which("chromium"),
        help="the Chromium binary (default: chromium on PATH)",
    )
    args = parser.parse_args()
    if not args.chromium:
        raise SystemExit("no Chromium: apt-get install chromium, or pass --chromium PATH")
    if args.url:
        screenshot(args.url, args.out, args.chromium)
    else:
        with serve() as url:
            screenshot(url, args.out, args.chromium)
    print(args.out)


if __name__ == "__main__":
    main()
