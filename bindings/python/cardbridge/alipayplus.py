"""Alipay+ Mini Program Platform membership cards: the store, the integration
(`issueCard` out, the platform's calls in), pending calls and responses."""

from __future__ import annotations

import ctypes
import datetime as _dt
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from enum import IntEnum
from os import PathLike, fspath
from typing import Any, NamedTuple, Union

from . import _bindings as b
from ._managed import Managed
from .errors import _read_text
from ._options import CancelToken, call_options
from ._util import (
    HeaderArray,
    HeadersInput,
    JsonInput,
    body as _body,
    header_pairs,
    integer,
    invoke,
    json_bytes,
    now_ms as _now_ms,
    read_header,
    take_bytes,
    text,
    view,
)

log = logging.getLogger("cardbridge")

StorePtr = ctypes.POINTER(b.cardbridge_store)
AlipayPlusPtr = ctypes.POINTER(b.cardbridge_alipayplus)
CallPtr = ctypes.POINTER(b.cardbridge_alipayplus_call)
ResponsePtr = ctypes.POINTER(b.cardbridge_http_response)


class Api(IntEnum):
    """Which platform → merchant API a pending call is."""

    NOTIFY_CARD_REGISTRATION = b.CARDBRIDGE_ALIPAYPLUS_API_NOTIFY_CARD_REGISTRATION
    INQUIRE_CARD_DETAIL = b.CARDBRIDGE_ALIPAYPLUS_API_INQUIRE_CARD_DETAIL
    UPDATE_CARD_DETAIL = b.CARDBRIDGE_ALIPAYPLUS_API_UPDATE_CARD_DETAIL
    INQUIRE_MEMBER_ASSETS = b.CARDBRIDGE_ALIPAYPLUS_API_INQUIRE_MEMBER_ASSETS

    @property
    def wire_name(self) -> str:
        """The API's name on the wire, e.g. `notifyCardRegistration`."""
        head, *rest = self.name.lower().split("_")
        return head + "".join(part.capitalize() for part in rest)


class Direction(IntEnum):
    """Which rules `validate` applies."""

    #: A body received from the platform (required fields, types, lengths).
    INBOUND = b.CARDBRIDGE_DIRECTION_INBOUND
    #: A body we send (every rule, including forbidden characters).
    OUTBOUND = b.CARDBRIDGE_DIRECTION_OUTBOUND


class Store(Managed[Any]):
    """The durable store of idempotency records and the `issueCard` outbox.

    Integrations keep their own reference, so a store may be closed as soon
    as the integrations using it exist.
    """

    def __init__(self, handle: Any) -> None:
        """Use `Store.sqlite(path)`, `Store.postgres(dsn)` or `Store.memory()`."""
        super().__init__(handle)

    @classmethod
    def sqlite(cls, path: str | PathLike[str]) -> Store:
        """Opens (creating it if needed) the SQLite store at `path`."""
        if not isinstance(path, (str, PathLike)):
            raise TypeError(f"path must be str or os.PathLike, not {type(path).__name__}")
        raw = text(fspath(path), "path")
        out = StorePtr()
        invoke(b.cardbridge_store_open_sqlite, raw, len(raw), ctypes.byref(out))
        return cls(out)

    @classmethod
    def postgres(cls, dsn: str) -> Store:
        """Opens the PostgreSQL store on the database named by `dsn` (libpq
        key/value form such as ``host=db.example.com dbname=cards user=cardbridge``
        or a ``postgresql://`` URL) and migrates its schema. Several processes
        and nodes may share one database. Any host other than loopback is
        reached over verified TLS. Raises `ConfigError` for a bad connection
        string, a refused login or a newer schema, and `TransportError` when
        the server cannot be reached; messages never contain the password."""
        raw = text(dsn, "dsn")
        out = StorePtr()
        invoke(b.cardbridge_store_open_postgres, raw, len(raw), ctypes.byref(out))
        return cls(out)

    @classmethod
    def memory(cls) -> Store:
        """An in-memory store, lost when the last reference is released (tests, demos)."""
        out = StorePtr()
        invoke(b.cardbridge_store_new_memory, ctypes.byref(out))
        return cls(out)

    def outbox_list(
        self,
        *,
        state: str | None = None,
        kind: str | None = None,
        created_before_ms: int | None = None,
        after_id: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """A page of outbox entries, oldest first, without bodies or answers:
        `id`, `kind`, `state` (`pending`/`succeeded`/`failed`), `attempts`,
        `last_status`, `last_error`, `created_ms`, … Pass the last `id` seen as
        `after_id` for the next page. Raises `InvalidArgumentError` naming a bad
        filter (`query.state`)."""
        query = {
            k: v
            for k, v in {
                "state": state,
                "kind": kind,
                "created_before_ms": created_before_ms,
                "after_id": after_id,
                "limit": limit,
            }.items()
            if v is not None
        }
        data = json.dumps(query).encode()
        out = b.cardbridge_bytes()
        with self._borrow() as store:
            invoke(b.cardbridge_store_outbox_list, store, data, len(data), ctypes.byref(out))
        entries: list[dict[str, Any]] = json.loads(take_bytes(out))
        return entries

    def outbox_get(self, outbox_id: str) -> dict[str, Any]:
        """One entry by id (e.g. `RemoteUnknown.outbox_id`) with its `attempt_log`,
        without body or answer. Raises `InvalidArgumentError` (field `id`) if absent."""
        raw = outbox_id.encode()
        out = b.cardbridge_bytes()
        with self._borrow() as store:
            invoke(b.cardbridge_store_outbox_get, store, raw, len(raw), ctypes.byref(out))
        entry: dict[str, Any] = json.loads(take_bytes(out))
        return entry

    def outbox_count_pending(self) -> int:
        """How many requests are still pending (outcome not known yet)."""
        n = ctypes.c_uint64()
        with self._borrow() as store:
            invoke(b.cardbridge_store_outbox_count_pending, store, ctypes.byref(n))
        return int(n.value)

    def _delete(self, handle: Any) -> None:
        b.cardbridge_store_free(handle)


class Answer(NamedTuple):
    """A plain copy of an HTTP answer, what `handle_http` returns; unpacks as
    `status, headers, body`."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


class Response(Managed[Any]):
    """A signed HTTP answer to send back to the platform.

    `status`, `headers` (in order) and `body` (exact bytes) are copies and stay
    readable after `close()`; the native object is kept only so that test
    support can verify the signature (`PlatformDriver.verify_response`).

    `diagnosis` is set on the answer to a platform call refused for its
    signature (`AlipayPlus.begin`, `WechatPay.callback_begin`): a dict with
    `check` (which check failed), `offset_ms`, `platform_clock_offset_ms`,
    `verified_variant` and `fix` (the rewrite that would make it verify, and
    what to change), `hints`, `body_len`, `body_sha256` and `summary`; never
    the body, a signature or personal data. None on every other answer.
    """

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    diagnosis: dict[str, Any] | None

    def __init__(self, handle: Any) -> None:
        super().__init__(handle)
        self.status = b.cardbridge_http_response_status(handle)
        self.headers = []
        h = b.cardbridge_header()
        for i in range(b.cardbridge_http_response_header_count(handle)):
            invoke(b.cardbridge_http_response_header, handle, i, ctypes.byref(h))
            self.headers.append(read_header(h))
        data = ctypes.POINTER(ctypes.c_uint8)()
        size = ctypes.c_size_t()
        invoke(b.cardbridge_http_response_body, handle, ctypes.byref(data), ctypes.byref(size))
        self.body = view(data, size.value)
        text = _read_text(b.cardbridge_http_response_diagnosis, handle)
        self.diagnosis = json.loads(text) if text else None

    def header(self, name: str) -> str | None:
        """The first header called `name` (case-insensitive), or None."""
        wanted = name.lower()
        return next((v for n, v in self.headers if n.lower() == wanted), None)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    def answer(self) -> Answer:
        """A plain `(status, headers, body)` copy."""
        return Answer(self.status, list(self.headers), self.body)

    def _delete(self, handle: Any) -> None:
        b.cardbridge_http_response_free(handle)

    def __repr__(self) -> str:
        return f"Response(status={self.status}, body={self.body[:80]!r})"


class Call(Managed[Any]):
    """A verified, validated platform call waiting for the host's decision.

    Finish it with `AlipayPlus.finish` (or `call.finish(...)`), or
    `finish_unknown` when the host cannot decide now. Closing an undecided
    call releases its claim, so the platform's next retry reaches the host
    again. The call keeps its integration alive.
    """

    _exclusive = True  # single owner in C: calls on it are serialised

    api: Api
    earlier_claims: int
    """Earlier claims on this requestId that expired before this delivery took it over."""
    raw: bytes
    request: dict[str, Any]
    alipayplus: AlipayPlus

    def __init__(self, handle: Any, alipayplus: AlipayPlus) -> None:
        super().__init__(handle)
        self.alipayplus = alipayplus
        self.api = Api(b.cardbridge_alipayplus_call_api(handle))
        self.earlier_claims = int(b.cardbridge_alipayplus_call_earlier_claims(handle))
        data = ctypes.POINTER(ctypes.c_uint8)()
        size = ctypes.c_size_t()
        invoke(b.cardbridge_alipayplus_call_request, handle, ctypes.byref(data), ctypes.byref(size))
        self.raw = view(data, size.value)
        self.request = json.loads(self.raw)

    @property
    def redelivered(self) -> bool:
        """True when an earlier host's claim on this requestId expired undecided
        (a slow or crashed host): it may already have acted, so look your own
        records up by requestId before acting again."""
        return self.earlier_claims > 0

    @property
    def api_name(self) -> str:
        """The API's wire name, e.g. `notifyCardRegistration`."""
        return self.api.wire_name

    @property
    def request_id(self) -> str | None:
        """The request's `requestId`, when it has one."""
        value = self.request.get("requestId")
        return value if isinstance(value, str) else None

    def finish(self, decision: Decision = None, now_ms: int | None = None) -> Response:
        """Same as `self.alipayplus.finish(self, decision, now_ms)`."""
        return self.alipayplus.finish(self, decision, now_ms)

    def finish_unknown(self, now_ms: int | None = None) -> Response:
        """Same as `self.alipayplus.finish_unknown(self, now_ms)`."""
        return self.alipayplus.finish_unknown(self, now_ms)

    def _delete(self, handle: Any) -> None:
        b.cardbridge_alipayplus_call_free(handle)

    def __repr__(self) -> str:
        return f"Call(api={self.api_name}, request_id={self.request_id!r}, closed={self.closed})"


#: The host's answer to a call: a dict or JSON text in wire format (`result`
#: may be left out for success); None means `{}`, i.e. `S SUCCESS`.
Decision = Union[Mapping[str, Any], str, bytes, None]


def _date_text(value: object, name: str = "register_date") -> str:
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            raise ValueError(f"{name} must carry a time zone (an aware datetime)")
        return value.isoformat(timespec="seconds")
    if isinstance(value, str):
        return value
    raise TypeError(f"{name} must be str or datetime, not {type(value).__name__}")


def build_issue_card(
    registration: Call | JsonInput,
    external_customer_id: str,
    register_date: str | _dt.datetime,
    card_fields: Sequence[Mapping[str, Any]] | str,
    *,
    external_card_no: str | None = None,
    expire_date: str | _dt.datetime | None = None,
    extend_info: str | None = None,
) -> dict[str, Any]:
    """Builds a validated `issueCard` request from the `notifyCardRegistration`
    it answers (a `Call`, its request dict, or the JSON as received), reusing
    its `appId`, `customerBelongsTo`, `requestId` and `customerId`.

    `register_date` is ISO 8601 with offset (or an aware datetime);
    `card_fields` is a list of `{"fieldCode": ..., "fieldValue": ...}`. The
    optional members of `issueCard`: `external_card_no` (`externalCardNo`,
    max 64), `expire_date` (`expireDate`, like `register_date`) and
    `extend_info` (`extendInfo`, max 2048), validated here with the rest.
    Raises `ValidationError` (with `field`, e.g. `issueCard.extendInfo`, and
    `limit`) or `InvalidJsonError`.
    """
    reg = registration.raw if isinstance(registration, Call) else json_bytes(registration, "registration")
    ext = text(external_customer_id, "external_customer_id")
    date = _date_text(register_date).encode("utf-8")
    fields = json_bytes(card_fields, "card_fields")
    options: dict[str, str] = {}
    if external_card_no is not None:
        options["externalCardNo"] = text(external_card_no, "external_card_no").decode("utf-8")
    if expire_date is not None:
        options["expireDate"] = _date_text(expire_date, "expire_date")
    if extend_info is not None:
        options["extendInfo"] = text(extend_info, "extend_info").decode("utf-8")
    opts = json.dumps(options).encode("utf-8") if options else None
    out = b.cardbridge_bytes()
    invoke(
        b.cardbridge_alipayplus_build_issue_card,
        reg, len(reg), ext, len(ext), date, len(date), fields, len(fields), opts, len(opts or b""),
        ctypes.byref(out),
    )
    parsed: dict[str, Any] = json.loads(take_bytes(out))
    return parsed


def validate(message: str, json_text: JsonInput, direction: Direction | str | int) -> str:
    """Validates an Alipay+ body without sending anything and returns it
    normalised (compact JSON). `message` is an API name (`issueCard`, ...) or
    its answer (`issueCardResponse`, ...); `direction` is `Direction`,
    `"inbound"` or `"outbound"`. Raises `ValidationError` / `InvalidJsonError`."""
    if isinstance(direction, str):
        try:
            direction = Direction[direction.upper()]
        except KeyError:
            raise ValueError(f"direction must be 'inbound' or 'outbound', not {direction!r}") from None
    code = integer(int(direction) if isinstance(direction, Direction) else direction, "direction")
    msg = text(message, "message")
    data = json_bytes(json_text, "json_text")
    out = b.cardbridge_bytes()
    invoke(b.cardbridge_alipayplus_validate, msg, len(msg), data, len(data), code, ctypes.byref(out))
    return take_bytes(out).decode("utf-8")


class AlipayPlus(Managed[Any]):
    """One merchant's Alipay+ integration: configuration, keys, the store, the
    `issueCard` client and the handler of the platform's calls.

    Thread-safe: one instance may serve many threads at once.

    `config` is a dict or JSON text with `client_id`, `merchant_private_key`
    and `platform_public_key` (PEM) and optionally `base_url` (needed for
    `issueCard`), `path_prefix`, `key_version`, timeouts, `retry`, ... (see
    `cardbridge_alipayplus_new` in cardbridge.h). Without `store`, the SQLite
    store at `config["store_path"]` is opened.
    """

    def __init__(self, config: JsonInput, store: Store | None = None) -> None:
        if store is not None and not isinstance(store, Store):
            raise TypeError(f"store must be a Store or None, not {type(store).__name__}")
        cfg = json_bytes(config, "config")
        out = AlipayPlusPtr()
        if store is None:
            invoke(b.cardbridge_alipayplus_new, cfg, len(cfg), None, ctypes.byref(out))
        else:
            with store._borrow() as s:
                invoke(b.cardbridge_alipayplus_new, cfg, len(cfg), s, ctypes.byref(out))
        super().__init__(out)

    def _delete(self, handle: Any) -> None:
        b.cardbridge_alipayplus_free(handle)

    # ---- outbound: issueCard

    def issue_card(
        self, request: JsonInput, *, deadline_ms: int | None = None, cancel: CancelToken | None = None
    ) -> dict[str, Any]:
        """Sends `issueCard` (validated, recorded in the outbox, retried with the
        same body on ambiguous outcomes) and returns the platform's verified
        answer (`result` and `cardNo`). The same requestId always means the
        same request: a later call returns the stored outcome.

        Raises `ValidationError`, `InvalidJsonError`, `IdempotencyConflict`,
        `RemoteFailed` (final `F`; see `remote_code`/`remote_message`),
        `RemoteUnknown` (retry later with the same request), `ConfigError`.

        `deadline_ms` bounds this call's retries (instead of the configured
        deadline); `cancel` (a `CancelToken`) stops them between attempts.
        Either way an unfinished call raises `RemoteUnknown` and the request
        stays pending. `cardbridge.aio.issue_card` runs it off the event loop.
        """
        data = json_bytes(request, "request")
        out = b.cardbridge_bytes()
        with self._borrow() as ap, call_options(deadline_ms, cancel) as options:
            invoke(b.cardbridge_alipayplus_issue_card_with_options, ap, data, len(data), options, ctypes.byref(out))
        answer: dict[str, Any] = json.loads(take_bytes(out))
        return answer

    def prepare_issue_card(self, request: JsonInput) -> Any:
        """Bring your own transport, step 1: validates and records `request`
        like `issue_card` (same requestId, same request) and returns the
        signed request to send yourself (`cardbridge.transport.Prepared`), or
        the stored answer (a dict) when the requestId is already final.
        Errors as for `issue_card`; nothing is sent."""
        from . import transport

        return transport._prepare(b.cardbridge_alipayplus_issue_card_prepare, self, json_bytes(request, "request"))

    def complete_issue_card(
        self,
        prepared: Any,
        *,
        status: int = 0,
        headers: HeadersInput = (),
        body: bytes = b"",
        reply: int | None = None,
    ) -> Any:
        """Bring your own transport, step 2: verifies and judges the answer to
        `prepared` (`status`, `headers`, raw `body`; or `reply=Reply.NOT_SENT`
        / `NO_ANSWER` / `TIMED_OUT`) as `issue_card` does, and returns the
        verified answer (a dict, the same `issue_card` returns) or the next
        `Prepared` (a retry). Consumes `prepared`. Raises `RemoteFailed`,
        `RemoteUnknown` (budget spent; the request stays pending)."""
        from . import transport

        r = transport.Reply.ANSWERED if reply is None else transport.Reply(reply)
        return transport._complete(
            b.cardbridge_alipayplus_issue_card_complete, self, prepared, r, status, headers, body
        )

    def issue_card_over(self, request: JsonInput, send: Callable[[Any], Any]) -> dict[str, Any]:
        """`issue_card` over your own HTTP stack: `send(prepared)` sends
        `prepared.method` / `.url` / `.headers` / `.body` and returns
        `(status, headers, body)`, or a `cardbridge.transport.Reply` when no
        answer came. Waits the backoff between attempts."""
        from . import transport

        return transport.drive(self.prepare_issue_card(request), self.complete_issue_card, send)

    build_issue_card = staticmethod(build_issue_card)
    validate = staticmethod(validate)

    def resume_pending(self) -> list[dict[str, Any]]:
        """Re-sends every pending `issueCard` (e.g. at start-up after a crash);
        one report per entry: `{"id", "ok": True, "response"}` or
        `{"id", "ok": False, "code", "name", "message"}`."""
        out = b.cardbridge_bytes()
        with self._borrow() as ap:
            invoke(b.cardbridge_alipayplus_resume_pending, ap, ctypes.byref(out))
        report: list[dict[str, Any]] = json.loads(take_bytes(out))
        return report

    def metrics(self) -> dict[str, Any]:
        """This integration's counters since it was built (README "Metrics"):
        `inbound` (per API, per result), `outbound_attempts` (per kind, per
        outcome), `retries`, `duplicates_replayed`, `inbound_reclaimed`,
        `lease_takeovers`, `outcomes_unknown`, `certificate_refreshes`,
        `store_errors`, `pending_entries`."""
        out = b.cardbridge_bytes()
        with self._borrow() as ap:
            invoke(b.cardbridge_alipayplus_metrics, ap, ctypes.byref(out))
        snapshot: dict[str, Any] = json.loads(take_bytes(out))
        return snapshot

    def purge_expired(self, now_ms: int | None = None) -> int:
        """Deletes idempotency records older than the retention; returns how many."""
        now = _now_ms(now_ms)
        purged = ctypes.c_size_t()
        with self._borrow() as ap:
            invoke(b.cardbridge_alipayplus_purge_expired, ap, now, ctypes.byref(purged))
        return purged.value

    # ---- inbound: begin -> host decides -> finish

    def begin(
        self,
        method: str,
        target: str,
        headers: HeadersInput,
        body: bytes,
        now_ms: int | None = None,
    ) -> Response | Call:
        """Step 1 of handling a platform call: verifies the signature, validates
        the body and claims the requestId.

        Returns a `Response` to send at once (bad signature → `ACCESS_DENIED`,
        invalid field → `PARAM_ILLEGAL`, a duplicate's stored answer, ...) or a
        `Call` the host must decide and `finish`. `target` is the
        request-target as received (path plus `?query`); `body` the raw bytes.
        """
        m, t = text(method, "method"), text(target, "target")
        raw = _body(body)
        headers_array = HeaderArray(header_pairs(headers))
        now = _now_ms(now_ms)
        response, call = ResponsePtr(), CallPtr()
        with self._borrow() as ap:
            invoke(
                b.cardbridge_alipayplus_begin,
                ap, m, len(m), t, len(t), headers_array.array, headers_array.count,
                raw, len(raw), now, ctypes.byref(response), ctypes.byref(call),
            )
        if response:
            return Response(response)
        return Call(call, self)

    def finish(self, call: Call, decision: Decision = None, now_ms: int | None = None) -> Response:
        """Step 2: the signed answer for the host's decision (`{}`/None means
        `S SUCCESS`; else a wire-format answer such as
        `{"result": {"resultStatus": "F", "resultCode": "PROCESS_FAIL", ...}}`).

        Raises `AlreadyUsedError` when the call was already finished, and
        `ValidationError` for an invalid decision (the call stays usable).
        """
        if not isinstance(call, Call):
            raise TypeError(f"call must be a Call, not {type(call).__name__}")
        data = b"{}" if decision is None else json_bytes(decision, "decision")
        now = _now_ms(now_ms)
        response = ResponsePtr()
        with self._borrow() as ap, call._borrow() as c:
            invoke(b.cardbridge_alipayplus_finish, ap, c, data, len(data), now, ctypes.byref(response))
        return Response(response)

    def finish_unknown(self, call: Call, now_ms: int | None = None) -> Response:
        """Answers `U UNKNOWN_EXCEPTION` (the platform retries later) when the
        host cannot decide now; releases the claim."""
        if not isinstance(call, Call):
            raise TypeError(f"call must be a Call, not {type(call).__name__}")
        now = _now_ms(now_ms)
        response = ResponsePtr()
        with self._borrow() as ap, call._borrow() as c:
            invoke(b.cardbridge_alipayplus_finish_unknown, ap, c, now, ctypes.byref(response))
        return Response(response)


def handle_http(
    alipayplus: AlipayPlus,
    method: str,
    target: str,
    headers: HeadersInput,
    body: bytes,
    decide: Callable[[Call], Decision],
    now_ms: int | None = None,
) -> Answer:
    """Handles one HTTP request from the platform end to end and returns the
    `(status, headers, body)` to send back.

    `decide(call)` is asked only when the host must decide (a valid, signed,
    new call) and returns the decision (None or `{}` for success). If it raises
    or returns an invalid decision, the error is logged and the platform gets
    `U UNKNOWN_EXCEPTION`, so it retries later.
    """
    outcome = alipayplus.begin(method, target, headers, body, now_ms)
    if isinstance(outcome, Response):
        with outcome:
            return outcome.answer()
    with outcome as call:
        try:
            response = alipayplus.finish(call, decide(call), now_ms)
        except Exception:
            log.exception("cardbridge: deciding %s %s failed; answering U so the platform retries",
                          call.api_name, call.request_id)
            response = alipayplus.finish_unknown(call, now_ms)
        with response:
            return response.answer()
