"""The web page's files as the service sends them, and what their source may not contain.

In process (no lifespan, no agent): GET / and /page/* with their security headers, nothing
else under page/ served, the API schema unchanged. The page's own behaviour, in a real
browser, is tests/e2e/test_web_page.py.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from importlib.resources import files

import httpx
import pytest

from opsagent.service.http import create_app
from opsagent.service.http.page import ASSETS
from opsagent.service.settings import Settings

PAGE = files("opsagent.service.http") / "page"


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(checkpoint_url="memory://"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://opsagent") as http:
        yield http


@pytest.mark.parametrize(
    ("path", "media"),
    [
        ("/", "text/html"),
        ("/page/page.js", "text/javascript"),
        ("/page/page.css", "text/css"),
        ("/page/icon.svg", "image/svg+xml"),
    ],
)
async def test_the_page_and_its_files_carry_csp_and_nosniff(
    client: httpx.AsyncClient, path: str, media: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media)
    policy = dict(
        part.strip().split(" ", 1)
        for part in response.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path", ["/page/index.html", "/page/../page.py", "/page/%2e%2e/page.py", "/page/x.js"]
)
async def test_nothing_else_is_served(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


async def test_the_api_schema_is_unchanged(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert set(spec["paths"]) == {"/ping", "/invocations", "/threads/{thread_id}"}


def test_every_served_file_is_in_the_package() -> None:
    assert {p.name for p in PAGE.iterdir()} >= set(ASSETS)


def test_no_inline_script_and_no_markup_from_data() -> None:
    html = (PAGE / "index.html").read_text()
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/page/page.js" defer>']
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    assert "style=" not in html
    script = (PAGE / "page.js").read_text()
    code = "\n".join(line for line in script.splitlines() if not line.strip().startswith("//"))
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in code, sink
    assert "new Function" not in code and 'setAttribute("style"' not in code
