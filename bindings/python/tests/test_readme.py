"""The README's Python blocks, run as written against `cardbridge emulator`
(loopback only): the integration and issueCard block, and the Flask endpoint
served by a real Werkzeug server that receives signed platform calls, one of
them to a request-target with a query string (`?x=1`), which the platform
signs too. The only change made to the text is the emulator's URL in place
of the production `base_url`."""

from __future__ import annotations

import http.client
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask
import pytest
from werkzeug.serving import make_server

import cardbridge
from cardbridge.testing import Emulator, HttpRequest, sample_registration

from conftest import REPO, key

README = REPO / "README.md"
PRODUCTION_URL = "https://open-sea-global.alipay.com"
README_CLIENT_ID = "2022XXXX"


def python_blocks() -> list[str]:
    blocks = re.findall(r"^```python\n(.*?)^```$", README.read_text(), flags=re.S | re.M)
    assert len(blocks) == 2, "the README has the integration block and the Flask block"
    return blocks


@pytest.fixture
def readme_emulator() -> Iterator[Emulator]:
    with Emulator(client_id=README_CLIENT_ID) as emu:
        yield emu


@pytest.fixture
def readme_namespace(
    readme_emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """Runs the first block in a scratch directory holding the key files it
    opens; returns its globals (alipay, decide, card, ...)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "merchant_private.pem").write_text(key("test_merchant_private.pem"))
    (tmp_path / "alipay_public.pem").write_text(key("test_platform_public.pem"))
    block = python_blocks()[0]
    assert PRODUCTION_URL in block
    saved: list[dict[str, Any]] = []
    namespace: dict[str, Any] = {
        "__name__": "readme",
        "save_member": saved.append,
        "registration": sample_registration("README-ISSUE-1"),
        "saved_members": saved,
    }
    exec(compile(block.replace(PRODUCTION_URL, readme_emulator.url), str(README), "exec"), namespace)
    try:
        yield namespace
    finally:
        namespace["alipay"].close()


def test_integration_block_issues_the_card(readme_namespace: dict[str, Any], readme_emulator: Emulator) -> None:
    card = readme_namespace["card"]
    assert card["result"]["resultStatus"] == "S"
    assert card["cardNo"]
    assert readme_emulator.hits("README-ISSUE-1") == 1
    assert Path("cardbridge.db").exists(), "the block opens its SQLite store"


class Served:
    """The Flask app of the README block, on a loopback Werkzeug server."""

    def __init__(self, app: flask.Flask) -> None:
        self.server = make_server("127.0.0.1", 0, app)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def post(self, request: HttpRequest) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(request.method, request.target, body=request.body, headers=dict(request.headers))
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


@pytest.fixture
def served(readme_namespace: dict[str, Any]) -> Iterator[Served]:
    """The Flask block, executed as written with the first block's names."""
    app = flask.Flask("readme")
    readme_namespace.update({"app": app, "request": flask.request})
    exec(compile(python_blocks()[1], str(README), "exec"), readme_namespace)
    s = Served(app)
    try:
        yield s
    finally:
        s.close()


@pytest.mark.parametrize(
    "suffix",
    ["", "?x=1", "?x=1&y=%2F%20z"],
    ids=["no-query", "query", "encoded-query"],
)
def test_flask_endpoint_passes_the_full_request_target(
    served: Served, readme_namespace: dict[str, Any], readme_emulator: Emulator, suffix: str
) -> None:
    request_id = f"README-FLASK-{len(suffix)}"
    target = "/v2/pds/memberships/notifyCardRegistration" + suffix
    request = readme_emulator.request(target, sample_registration(request_id))
    status, headers, body = served.post(request)
    result = json.loads(body)["result"]
    assert (status, result["resultStatus"], result["resultCode"]) == (200, "S", "SUCCESS"), result
    assert headers["client-id"] == README_CLIENT_ID and "signature" in headers
    saved = readme_namespace["saved_members"]
    assert [m["requestId"] for m in saved] == [request_id], "decide() saw the call once"


def test_the_old_snippet_would_have_been_refused(
    readme_namespace: dict[str, Any], readme_emulator: Emulator
) -> None:
    """`request.path` drops the query: the platform's signature over
    `…?x=1` then does not verify (what the README used to show)."""
    alipay = readme_namespace["alipay"]
    request = readme_emulator.request(
        "/v2/pds/memberships/notifyCardRegistration?x=1", sample_registration("README-OLD")
    )
    path_only = request.target.split("?", 1)[0]
    status, _, body = cardbridge.handle_http(
        alipay, request.method, path_only, request.headers, request.body, decide=lambda call: {}
    )
    assert status == 200
    assert json.loads(body)["result"]["resultCode"] == "ACCESS_DENIED"
