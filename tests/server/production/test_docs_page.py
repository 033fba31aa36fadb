"""GET /docs in a real headless Chromium: offline Swagger UI whose "Try it out" returns 200."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from chromium_cdp import CHROMIUM, Chromium
from served import Server

from requires import unavailable

PREDICT = "#operations-default-predict"
LIVE_STATUS = (
    f"(function () {{ var e = document.querySelector({json.dumps(PREDICT)} + "
    "' .live-responses-table tbody .response-col_status'); return e && e.innerText.trim(); })()"
)


def test_docs_page_works_offline_and_try_it_out_answers_200(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    if CHROMIUM is None:
        unavailable("chromium missing: bash scripts/install-system-deps.sh chromium")
    server = serve()
    page = server.get("/docs")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    profile = tmp_path / "profile"
    profile.mkdir()
    with Chromium(profile) as browser:
        browser.navigate(server.url + "/docs")
        browser.wait_for(f"!!document.querySelector({json.dumps(PREDICT)})", "the predict op")
        summary = browser.evaluate(f"document.querySelector({json.dumps(PREDICT)}).innerText")
        assert "/predict" in summary and "RNGModel" in summary
        browser.click(f"{PREDICT} .opblock-summary-control")
        browser.click(f"{PREDICT} .try-out__btn")
        browser.click(f"{PREDICT} .execute")
        assert browser.wait_for(LIVE_STATUS, "the live response") == "200"
        body = browser.evaluate(
            f"document.querySelector({json.dumps(PREDICT)} + "
            "' .live-responses-table .response-col_description pre').innerText"
        )
        assert json.loads(body)["output"]["score"] == 0.9417154046806644
        browser.screenshot(tmp_path / "docs.png")
        # Everything the page loaded came from this server (or is inline data).
        origin = urlsplit(server.url)
        for url in browser.requests:
            parts = urlsplit(url)
            assert parts.scheme == "data" or (parts.scheme, parts.netloc) == (
                origin.scheme,
                origin.netloc,
            ), url
        assert any(url.endswith("/docs/swagger-ui-bundle.js") for url in browser.requests)
        assert any(url.endswith("/predict") for url in browser.requests)
