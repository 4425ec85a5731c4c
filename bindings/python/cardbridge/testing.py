"""Test support, not product API: the `cardbridge emulator` binary in a
subprocess, driven through its control API (JSON over loopback HTTP under
`/__cardbridge/`).

One `Emulator` plays both platforms on one port: the Alipay+ `issueCard`
endpoint and the WeChat Pay card-member APIs. It also mints signed
platform → merchant calls (Alipay+ `notifyCardRegistration`, WeChat Pay card
callbacks), optionally spoiled (`tamper`), for the integration under test.

The binary is found, in order: `$CARDBRIDGE_BIN`; the one bundled in this
package (wheels carry it); `cardbridge` next to the loaded native library
(e.g. `target/debug/`); `cardbridge` on `PATH`. Uses only the standard
library (subprocess, urllib); loopback only; test keys unless configured.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from . import _ffi

__all__ = [
    "Emulator",
    "EmulatorError",
    "HttpRequest",
    "find_binary",
    "sample_registration",
    "sample_user_card_create",
]

ENV_BINARY = "CARDBRIDGE_BIN"
_BINARY = "cardbridge.exe" if os.name == "nt" else "cardbridge"


def find_binary() -> Path:
    """The `cardbridge` binary (see the module documentation for the order);
    FileNotFoundError naming the places looked at when there is none."""
    candidates: list[Path] = []
    explicit = os.environ.get(ENV_BINARY)
    if explicit:
        candidates.append(Path(explicit))
    else:
        candidates.append(Path(__file__).resolve().parent / "_bin" / _BINARY)
        candidates.append(Path(_ffi.library_path).resolve().parent / _BINARY)
        on_path = shutil.which("cardbridge")
        if on_path:
            candidates.append(Path(on_path))
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    raise FileNotFoundError(
        "cardbridge.testing: no cardbridge binary (looked at "
        + ", ".join(str(c) for c in candidates)
        + f"); build it (cargo build --bin cardbridge) or set {ENV_BINARY}"
    )


class EmulatorError(Exception):
    """The control API refused a request: `status` (HTTP), `error` (the
    error kind's name), `field` (the member at fault, if any)."""

    def __init__(self, status: int, error: str, message: str, field: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.field = field


@dataclass(frozen=True)
class HttpRequest:
    """A platform → merchant request minted by the emulator: feed it to
    `AlipayPlus.begin` / `WechatPay.begin` or POST it to an endpoint."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes = field(repr=False)

    @staticmethod
    def _from(doc: Mapping[str, Any]) -> HttpRequest:
        return HttpRequest(
            method=doc["method"],
            target=doc["target"],
            headers=[(n, v) for n, v in doc["headers"]],
            body=doc["body"].encode("utf-8"),
        )


class Answer(Protocol):
    """An HTTP answer: `cardbridge.Response` is one."""

    headers: list[tuple[str, str]]
    body: bytes


def _body(value: Any) -> Any:
    """A body for the control API: bytes are sent as text (as is), a dict as JSON."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8")
    return value


class Emulator:
    """`cardbridge --json emulator --port 0 [--config FILE]` in a subprocess.
    `config` members (e.g. `client_id`, `path_prefix`, `platform_private_key`,
    `merchant_public_key`, `wechatpay_private_key`, `public_key_id`,
    `api_v3_key`, `platform_certificate`) override the test keys and IDs.
    `close()` (or the `with` block) stops it with SIGTERM."""

    def __init__(self, config: Mapping[str, Any] | None = None, /, **members: Any) -> None:
        self._config_file: str | None = None
        args = [str(find_binary()), "--json", "emulator", "--port", "0"]
        merged = {**(config or {}), **members}
        if merged:
            fd, self._config_file = tempfile.mkstemp(prefix="cardbridge-emulator-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(merged, f)
            args += ["--config", self._config_file]
        env = {k: v for k, v in os.environ.items() if k not in ("CARDBRIDGE_PLATFORM_CONFIG", "CARDBRIDGE_KEYS")}
        self._process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            _, err = self._process.communicate()
            self._remove_config()
            raise EmulatorError(0, "START_FAILED", f"cardbridge emulator did not start: {err.strip()}", None)
        doc: dict[str, Any] = json.loads(line)
        if "url" not in doc:  # `--json` errors: {"error", "message", "field", "limit"}
            self._process.communicate()
            self._remove_config()
            raise EmulatorError(0, doc.get("error", ""), doc.get("message", ""), doc.get("field"))
        #: The emulator's start document (`url`, `alipayplus`, `wechatpay`, `keys`, …).
        self.info = doc
        #: `http://127.0.0.1:<port>`: the `base_url` for both integrations.
        self.url: str = self.info["url"]

    def close(self) -> None:
        """Stops the emulator (SIGTERM) and waits for it."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.communicate()
        self._remove_config()

    def _remove_config(self) -> None:
        if self._config_file is not None:
            os.unlink(self._config_file)
            self._config_file = None

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def control(self, method: str, path: str, body: Any = None) -> Any:
        """One control API call, e.g. `control("GET", "/counters")`; the
        answer's JSON, or EmulatorError."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(f"{self.url}/__cardbridge{path}", data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as e:
            doc = json.loads(e.read() or b"{}")
            raise EmulatorError(e.code, doc.get("error", ""), doc.get("message", ""), doc.get("field")) from None

    def counters(self) -> dict[str, Any]:
        """`GET /counters`: both platforms' request counters."""
        doc: dict[str, Any] = self.control("GET", "/counters")
        return doc

    # Alipay+

    def push_fault(self, fault: str, **params: Any) -> None:
        """Queues a fault for a later `issueCard` (first in, first out), e.g.
        `push_fault("unknown")`, `push_fault("fail", code="X")`,
        `push_fault("http_status", status=502)`, `push_fault("delay", delay_ms=100)`."""
        self.control("POST", "/alipayplus/faults", {"fault": fault, **params})

    def hits(self, request_id: str) -> int:
        """How many `issueCard` requests carried `request_id` (faulted ones included)."""
        n: int = self.counters()["alipayplus"]["hits"].get(request_id, 0)
        return n

    def issue_card_hits(self) -> int:
        """Every `issueCard` request received, refused and faulted ones included."""
        n: int = self.counters()["alipayplus"]["issue_card_hits"]
        return n

    def cards_issued(self) -> int:
        """Distinct requestIds that got a card."""
        n: int = self.counters()["alipayplus"]["cards_issued"]
        return n

    def request(
        self, target: str, body: Any, request_time: str | None = None, tamper: str = "none"
    ) -> HttpRequest:
        """A platform → merchant `POST target` carrying `body` (bytes as is,
        a dict as JSON), signed as the platform signs (`Request-Time` =
        `request_time`, default now), spoiled as `tamper` says (`bad-signature`,
        `probe` (unsigned), `wrong-key`, `malformed-header`, `wrong-client-id`)."""
        doc = self.control(
            "POST",
            "/alipayplus/mint",
            {"target": target, "body": _body(body), "request_time": request_time, "tamper": tamper},
        )
        return HttpRequest._from(doc["request"])

    def verify_answer(self, request: HttpRequest, answer: Answer) -> bool:
        """Whether the merchant's `answer` (its headers and body, e.g. a
        `cardbridge.Response`) to `request` is signed with the merchant key
        the emulator knows (Signature, Response-Time, Client-Id, exact body)."""
        doc = self.control(
            "POST",
            "/alipayplus/verify",
            {"target": request.target, "headers": [list(h) for h in answer.headers], "body": _body(answer.body)},
        )
        return bool(doc["valid"])

    # WeChat Pay

    def push_wechat_fault(self, fault: str, **params: Any) -> None:
        """Queues a fault for a later WeChat Pay request (first in, first out),
        e.g. `push_wechat_fault("status", status=429)`, `("accepted_202")`,
        `("delay", delay_ms=100)`, `("drop")`, `("bad_signature")`."""
        self.control("POST", "/wechatpay/faults", {"fault": fault, **params})

    def add_user_card(self, user_card_code: str, card_id: str, openid: str, brand_id: str) -> None:
        """Seeds a user card as WeChat holds it after the user opened it
        (`UNACTIVATED`, not confirmed); replaces one with the same code."""
        self.control(
            "POST",
            "/wechatpay/cards",
            {"user_card_code": user_card_code, "card_id": card_id, "openid": openid, "brand_id": brand_id},
        )

    def user_card(self, user_card_code: str) -> dict[str, Any]:
        """The emulator's view of a user card (sensitive fields in
        cleartext); EmulatorError (status 404) when it has none."""
        code = urllib.parse.quote(user_card_code, safe="")
        card: dict[str, Any] = self.control("GET", f"/wechatpay/cards/{code}")["card"]
        return card

    def confirm_hits(self, user_card_code: str) -> int:
        """`confirm` requests received for `user_card_code` (refused and faulted included)."""
        n: int = self.counters()["wechatpay"]["confirm_hits"].get(user_card_code, 0)
        return n

    def confirms_applied(self) -> int:
        """Distinct user cards a `confirm` was applied to."""
        n: int = self.counters()["wechatpay"]["cards_confirmed"]
        return n

    def wechat_hits(self, path_prefix: str = "/v3") -> int:
        """WeChat Pay requests whose path starts with `path_prefix`."""
        by_path: dict[str, int] = self.counters()["wechatpay"]["hits_by_path"]
        return sum(n for p, n in by_path.items() if p.startswith(path_prefix))

    def callback(
        self,
        event_type: str,
        original_type: str,
        resource: Mapping[str, Any],
        now: int | None = None,
        tamper: str = "none",
    ) -> HttpRequest:
        """A card-event callback as WeChat Pay sends it: `resource` (e.g.
        `sample_user_card_create(...)`, cleartext) encrypted and sealed,
        signed at `now` (Unix seconds, default now), spoiled as `tamper` says
        (`bad-signature`, `stale`, `probe`, `bad-tag`, `wrong-serial`,
        `missing-header`). `original_type` "" leaves the associated data out.
        Seeds no card (use `add_user_card`)."""
        doc = self.control(
            "POST",
            "/wechatpay/mint",
            {
                "event_type": event_type,
                "original_type": original_type,
                "resource": dict(resource),
                "now_unix": now,
                "tamper": tamper,
                "seed": False,
            },
        )
        return HttpRequest._from(doc["request"])


def sample_registration(request_id: str) -> dict[str, Any]:
    """A valid `notifyCardRegistration` body for `request_id` (test data)."""
    return {
        "appId": "2102010113769000",
        "customerBelongsTo": "TNG",
        "customerId": "1236450862137570000",
        "requestId": request_id,
        "registrationFields": [
            {"fieldCode": "USER_NAME", "fieldValue": "John Doe"},
            {"fieldCode": "GENDER", "fieldValue": "M"},
            {"fieldCode": "BIRTH_DATE", "fieldValue": "2002-07-25"},
            {"fieldCode": "MOBILE_PHONE", "fieldValue": "+6588120000"},
            {"fieldCode": "EMAIL", "fieldValue": "email@example.com"},
        ],
    }


#: The brand of `sample_user_card_create`.
SAMPLE_BRAND_ID = "1004"


def sample_user_card_create(user_card_code: str | None, card_id: str, openid: str) -> dict[str, Any]:
    """A cleartext `USER_CARD.CREATE` resource for `Emulator.callback`
    (brand `1004`, phone `13800000000`, test user information); None or "" leaves
    the code out (the merchant allocates it)."""
    resource: dict[str, Any] = {"user_card_code": user_card_code} if user_card_code else {}
    resource.update(
        {
            "card_id": card_id,
            "openid": openid,
            "card_color": "#63B359",
            "card_picture_url": "https://wxpaylogo.qpic.cn/wxpaylogo/xxxxx/0",
            "brand_id": SAMPLE_BRAND_ID,
            "card_type": "NORMAL",
            "phone_number": "13800000000",
            "level": "普通会员",
            "valid_date_information": {"type": "PERMANENT"},
            "pickup_time": "2021-06-24T16:37:26+08:00",
            "user_information": {
                "common_field_list": [
                    {"name": "USER_FORM_FLAG_NAME", "value": "张三"},
                    {"name": "USER_FORM_FLAG_SEX", "value": "男"},
                ],
                "custom_field_list": [{"name": "喜欢的运动", "user_chosen_values": ["跑步", "游泳"]}],
            },
            "user_card_state": "NOT_EFFECTIVE",
            "create_time": "2021-06-24T16:37:26+08:00",
            "modify_time": "2021-06-24T16:37:26+08:00",
        }
    )
    return resource
