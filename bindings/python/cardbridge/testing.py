"""Test support: a loopback emulator of the Alipay+ platform's `issueCard`
endpoint, a driver that signs platform → merchant requests the way the
platform does, and a sample registration body; a loopback emulator of the
WeChat Pay card-member APIs that also mints signed card-event callbacks, and
a sample `USER_CARD.CREATE` resource. Loopback only; test keys only.
"""

from __future__ import annotations

import ctypes
import datetime as _dt
import json
from collections.abc import Mapping
from enum import IntEnum
from typing import Any

from . import _bindings as b
from ._managed import Managed
from ._util import JsonInput, integer, invoke, json_bytes, read_header, take_bytes, text, view
from .alipayplus import Response
from .keys import PublicKey
from .wechatpay import now_unix


class Tamper(IntEnum):
    """How `PlatformDriver.request` spoils a request."""

    NONE = b.CARDBRIDGE_TAMPER_NONE
    BODY_BYTE = b.CARDBRIDGE_TAMPER_BODY_BYTE
    WRONG_KEY = b.CARDBRIDGE_TAMPER_WRONG_KEY
    UNSIGNED = b.CARDBRIDGE_TAMPER_UNSIGNED
    MALFORMED_HEADER = b.CARDBRIDGE_TAMPER_MALFORMED_HEADER
    WRONG_CLIENT_ID = b.CARDBRIDGE_TAMPER_WRONG_CLIENT_ID


class Emulator(Managed[Any]):
    """The Alipay+ platform's `issueCard` endpoint on `127.0.0.1` (a free
    port): verifies the merchant's signature, issues cards idempotently by
    requestId, signs its answers and can inject faults. `close()` stops it."""

    base_url: str

    def __init__(self, handle: Any) -> None:
        """Use `Emulator.start(...)`."""
        super().__init__(handle)
        out = b.cardbridge_bytes()
        invoke(b.cardbridge_emulator_base_url, handle, ctypes.byref(out))
        self.base_url = take_bytes(out).decode("utf-8")

    @classmethod
    def start(
        cls,
        platform_private_key_pem: str,
        merchant_public_key_pem: str,
        client_id: str,
        path_prefix: str | None = None,
        key_version: str | None = None,
    ) -> Emulator:
        """Starts an emulator; point the integration's `base_url` at
        `emulator.base_url` and use the same `path_prefix` (default `/api/open`)."""
        config: dict[str, str] = {
            "platform_private_key": _str(platform_private_key_pem, "platform_private_key_pem"),
            "merchant_public_key": _str(merchant_public_key_pem, "merchant_public_key_pem"),
            "client_id": _str(client_id, "client_id"),
        }
        if path_prefix is not None:
            config["path_prefix"] = _str(path_prefix, "path_prefix")
        if key_version is not None:
            config["key_version"] = _str(key_version, "key_version")
        raw = json_bytes(config, "config")
        out = ctypes.POINTER(b.cardbridge_emulator)()
        invoke(b.cardbridge_emulator_alipayplus_start, raw, len(raw), ctypes.byref(out))
        return cls(out)

    def push_fault(self, fault: str, **params: Any) -> None:
        """Queues a fault for a later `issueCard` (first in, first out), e.g.
        `push_fault("unknown")`, `push_fault("fail", code="X", message="...")`,
        `push_fault("http_status", status=502)`, `push_fault("delay", delay_ms=100)`.
        Raises `ValidationError` for an unknown fault or bad parameter."""
        raw = json_bytes({"fault": _str(fault, "fault"), **params}, "fault")
        with self._borrow() as emu:
            invoke(b.cardbridge_emulator_push_fault, emu, raw, len(raw))

    def hits(self, request_id: str) -> int:
        """How many `issueCard` requests carried `request_id` (faulted ones included)."""
        raw = text(request_id, "request_id")
        with self._borrow() as emu:
            return b.cardbridge_emulator_hits(emu, raw, len(raw))

    def issue_card_hits(self) -> int:
        """Every `issueCard` request received, refused and faulted ones included."""
        with self._borrow() as emu:
            return b.cardbridge_emulator_issue_card_hits(emu)

    def cards_issued(self) -> int:
        """Distinct requestIds that got a card."""
        with self._borrow() as emu:
            return b.cardbridge_emulator_cards_issued(emu)

    def _delete(self, handle: Any) -> None:
        b.cardbridge_emulator_free(handle)


class HttpRequest(Managed[Any]):
    """A platform → merchant request made by `PlatformDriver.request`.

    `method`, `target`, `headers` and `body` are copies (readable after
    `close()`); feed them to `AlipayPlus.begin` or POST them to your endpoint.
    """

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def __init__(self, handle: Any) -> None:
        super().__init__(handle)
        self.method = self._text(b.cardbridge_http_request_method)
        self.target = self._text(b.cardbridge_http_request_target)
        self.headers = []
        h = b.cardbridge_header()
        for i in range(b.cardbridge_http_request_header_count(handle)):
            invoke(b.cardbridge_http_request_header, handle, i, ctypes.byref(h))
            self.headers.append(read_header(h))
        data = ctypes.POINTER(ctypes.c_uint8)()
        size = ctypes.c_size_t()
        invoke(b.cardbridge_http_request_body, handle, ctypes.byref(data), ctypes.byref(size))
        self.body = view(data, size.value)

    def _text(self, accessor: Any) -> str:
        data = ctypes.POINTER(ctypes.c_char)()
        size = ctypes.c_size_t()
        invoke(accessor, self._ptr(), ctypes.byref(data), ctypes.byref(size))
        return view(data, size.value).decode("utf-8")

    def _delete(self, handle: Any) -> None:
        b.cardbridge_http_request_free(handle)

    def __repr__(self) -> str:
        return f"HttpRequest({self.method} {self.target}, {len(self.body)} bytes)"


def format_request_time(now: _dt.datetime | None = None) -> str:
    """`now` (default: the current time) as an Alipay+ `Request-Time`, e.g.
    `2026-11-23T10:00:00.000+00:00`."""
    moment = now or _dt.datetime.now(_dt.timezone.utc)
    if moment.tzinfo is None:
        raise ValueError("request time must carry a time zone (an aware datetime)")
    return moment.isoformat(timespec="milliseconds")


class PlatformDriver(Managed[Any]):
    """Builds platform → merchant requests signed with the (test) platform
    key, or deliberately spoiled (`Tamper`). Thread-safe."""

    def __init__(self, platform_private_key_pem: str, client_id: str, key_version: str = "1") -> None:
        pem = text(platform_private_key_pem, "platform_private_key_pem")
        cid = text(client_id, "client_id")
        kv = text(key_version, "key_version")
        out = ctypes.POINTER(b.cardbridge_platform_driver)()
        invoke(b.cardbridge_platform_driver_new, pem, len(pem), cid, len(cid), kv, len(kv), ctypes.byref(out))
        super().__init__(out)

    def request(
        self,
        target: str,
        body: JsonInput,
        request_time: str | None = None,
        tamper: Tamper | int = Tamper.NONE,
    ) -> HttpRequest:
        """A signed `POST target` carrying `body` (bytes as is, or a dict as
        compact JSON), with `Request-Time` = `request_time` (default now)."""
        t = text(target, "target")
        raw = json_bytes(body, "body")
        when = text(request_time if request_time is not None else format_request_time(), "request_time")
        how = integer(int(tamper) if isinstance(tamper, Tamper) else tamper, "tamper")
        out = ctypes.POINTER(b.cardbridge_http_request)()
        with self._borrow() as driver:
            invoke(
                b.cardbridge_platform_driver_request,
                driver, t, len(t), raw, len(raw), when, len(when), how, ctypes.byref(out),
            )
        return HttpRequest(out)

    @staticmethod
    def verify_response(merchant_public_key: PublicKey | str, request: HttpRequest, response: Response) -> bool:
        """Whether `response` is the merchant's correctly signed answer to
        `request` (Signature, Response-Time, Client-Id, exact body)."""
        if not isinstance(request, HttpRequest) or not isinstance(response, Response):
            raise TypeError("verify_response needs an HttpRequest and a Response from this library")
        if isinstance(merchant_public_key, str):
            with PublicKey.from_pem(merchant_public_key) as key:
                return PlatformDriver.verify_response(key, request, response)
        if not isinstance(merchant_public_key, PublicKey):
            raise TypeError("merchant_public_key must be a PublicKey or PEM text")
        with merchant_public_key._borrow() as k, request._borrow() as q, response._borrow() as r:
            return b.cardbridge_platform_driver_verify_response(k, q, r)

    def _delete(self, handle: Any) -> None:
        b.cardbridge_platform_driver_free(handle)


def _str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, not {type(value).__name__}")
    return value


def sample_registration(request_id: str) -> dict[str, Any]:
    """A valid `notifyCardRegistration` body for `request_id` (test data)."""
    raw = text(request_id, "request_id")
    out = b.cardbridge_bytes()
    invoke(b.cardbridge_emulator_sample_registration, raw, len(raw), ctypes.byref(out))
    sample: dict[str, Any] = json.loads(take_bytes(out))
    return sample


class CallbackTamper(IntEnum):
    """How `WechatEmulator.callback` spoils a card-event callback."""

    #: Correctly signed.
    NONE = b.CARDBRIDGE_CALLBACK_TAMPER_NONE
    #: A `WECHATPAY/SIGNTEST/` signature probe (must be refused: 401).
    SIGNTEST_PROBE = b.CARDBRIDGE_CALLBACK_TAMPER_SIGNTEST_PROBE
    #: Correctly signed ten minutes before `now` (401).
    STALE_TIMESTAMP = b.CARDBRIDGE_CALLBACK_TAMPER_STALE_TIMESTAMP
    #: One bit of the sealed resource flipped before signing: the signature
    #: verifies, decryption fails (400).
    BAD_TAG = b.CARDBRIDGE_CALLBACK_TAMPER_BAD_TAG
    #: `Wechatpay-Serial` names a key the merchant does not have (401).
    WRONG_SERIAL = b.CARDBRIDGE_CALLBACK_TAMPER_WRONG_SERIAL
    #: One letter or digit of the body changed after signing (401).
    BODY_BYTE = b.CARDBRIDGE_CALLBACK_TAMPER_BODY_BYTE
    #: No `Wechatpay-Signature` header (400).
    MISSING_HEADER = b.CARDBRIDGE_CALLBACK_TAMPER_MISSING_HEADER


class WechatEmulator(Managed[Any]):
    """The WeChat Pay card-member APIs on `127.0.0.1` (plain HTTP, a free
    port): checks the merchant's `Authorization` and `Wechatpay-Serial`,
    decrypts sensitive fields, confirms / reads / updates user cards, syncs
    points, signs its answers, injects faults and mints signed card-event
    callbacks. Thread-safe. `close()` stops it."""

    base_url: str

    def __init__(self, handle: Any) -> None:
        """Use `WechatEmulator.start(...)`."""
        super().__init__(handle)
        out = b.cardbridge_bytes()
        invoke(b.cardbridge_emulator_wechatpay_base_url, handle, ctypes.byref(out))
        self.base_url = take_bytes(out).decode("utf-8")

    @classmethod
    def start(cls, config: Mapping[str, Any] | str | None = None, /, **members: Any) -> WechatEmulator:
        """Starts an emulator from its configuration (a dict or JSON text, and/or
        keyword members, which win): `wechatpay_private_key` (PEM; its public
        half is the integration's `wechatpay_public_key`), `public_key_id`
        (`PUB_KEY_ID_<digits>`), `merchant_public_key` (PEM), `mchid`,
        `merchant_serial_no`, `api_v3_key` (32 bytes) and optionally
        `platform_certificate` (`{"pem", "private_key"}`: certificate mode).
        Point the integration's `base_url` at `emulator.base_url`.
        Raises `ConfigError` (with `field`) or `InvalidKeyError`."""
        if isinstance(config, str):
            config = json.loads(config)
        if config is not None and not isinstance(config, Mapping):
            raise TypeError(f"config must be a dict, JSON text or None, not {type(config).__name__}")
        raw = json_bytes({**(config or {}), **members}, "config")
        out = ctypes.POINTER(b.cardbridge_wechatpay_emulator)()
        invoke(b.cardbridge_emulator_wechatpay_start, raw, len(raw), ctypes.byref(out))
        return cls(out)

    def push_fault(self, fault: str, **params: Any) -> None:
        """Queues a fault for a later request (first in, first out, any path),
        e.g. `push_fault("status", status=429, code="RATELIMIT_EXCEEDED")`,
        `push_fault("accepted")`, `push_fault("delay", delay_ms=100)`,
        `push_fault("drop")`, `push_fault("bad_signature")`. Raises
        `ValidationError` (`field` such as `fault_json.status`)."""
        raw = json_bytes({"fault": _str(fault, "fault"), **params}, "fault")
        with self._borrow() as emu:
            invoke(b.cardbridge_emulator_wechatpay_push_fault, emu, raw, len(raw))

    def add_user_card(self, user_card_code: str, card_id: str, openid: str, brand_id: str) -> None:
        """Seeds a user card as WeChat holds it after the user opened it
        (`UNACTIVATED`, not confirmed); replaces one with the same code."""
        code, card, user, brand = (
            text(user_card_code, "user_card_code"),
            text(card_id, "card_id"),
            text(openid, "openid"),
            text(brand_id, "brand_id"),
        )
        with self._borrow() as emu:
            invoke(
                b.cardbridge_emulator_wechatpay_add_user_card,
                emu, code, len(code), card, len(card), user, len(user), brand, len(brand),
            )

    def confirm_hits(self, user_card_code: str) -> int:
        """`confirm` requests received for `user_card_code` (refused and faulted included)."""
        raw = text(user_card_code, "user_card_code")
        with self._borrow() as emu:
            return b.cardbridge_emulator_wechatpay_confirm_hits(emu, raw, len(raw))

    def confirms_applied(self) -> int:
        """Distinct user cards a `confirm` was applied to."""
        with self._borrow() as emu:
            return b.cardbridge_emulator_wechatpay_confirms_applied(emu)

    def hits(self, path_prefix: str) -> int:
        """Requests whose path starts with `path_prefix` (e.g. `/v3` for all,
        `/v3/certificates`), refused and faulted ones included."""
        raw = text(path_prefix, "path_prefix")
        with self._borrow() as emu:
            return b.cardbridge_emulator_wechatpay_hits(emu, raw, len(raw))

    def user_card(self, user_card_code: str) -> dict[str, Any]:
        """The emulator's view of a user card, sensitive fields in cleartext;
        `InvalidArgumentError` (field `user_card_code`) when it has none."""
        raw = text(user_card_code, "user_card_code")
        out = b.cardbridge_bytes()
        with self._borrow() as emu:
            invoke(b.cardbridge_emulator_wechatpay_user_card, emu, raw, len(raw), ctypes.byref(out))
        card: dict[str, Any] = json.loads(take_bytes(out))
        return card

    def callback(
        self,
        event_type: str,
        original_type: str,
        plaintext: JsonInput,
        now: int | None = None,
        tamper: CallbackTamper | int = CallbackTamper.NONE,
    ) -> HttpRequest:
        """A card-event callback as WeChat Pay sends it: `plaintext` (the
        resource, e.g. `sample_user_card_create(...)`, sensitive fields in
        cleartext) is encrypted and sealed, signed at `now` (Unix seconds,
        default the current time) and spoiled as `tamper` says.
        `original_type` (e.g. `user_card`) is the associated data ("" leaves it out)."""
        event = text(event_type, "event_type")
        original = text(original_type, "original_type")
        raw = json_bytes(plaintext, "plaintext")
        when = now_unix(now)
        how = integer(int(tamper) if isinstance(tamper, CallbackTamper) else tamper, "tamper")
        out = ctypes.POINTER(b.cardbridge_http_request)()
        with self._borrow() as emu:
            invoke(
                b.cardbridge_emulator_wechatpay_callback,
                emu, event, len(event), original, len(original), raw, len(raw), when, how, ctypes.byref(out),
            )
        return HttpRequest(out)

    def _delete(self, handle: Any) -> None:
        b.cardbridge_emulator_wechatpay_free(handle)


def sample_user_card_create(user_card_code: str | None, card_id: str, openid: str) -> dict[str, Any]:
    """A cleartext `USER_CARD.CREATE` resource for `WechatEmulator.callback`
    (brand `1004`, phone `13800000000`, test user information); an empty or
    None `user_card_code` leaves the code out (the merchant allocates it)."""
    code = text(user_card_code if user_card_code is not None else "", "user_card_code")
    card, user = text(card_id, "card_id"), text(openid, "openid")
    out = b.cardbridge_bytes()
    invoke(
        b.cardbridge_emulator_wechatpay_sample_user_card_create,
        code, len(code), card, len(card), user, len(user), ctypes.byref(out),
    )
    sample: dict[str, Any] = json.loads(take_bytes(out))
    return sample
