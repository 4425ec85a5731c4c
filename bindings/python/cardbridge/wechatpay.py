"""WeChat Pay card-member integration (brand member cards): the client
(`confirm`, user-card reads and updates, points sync, certificates) and the
card-event callbacks (begin → the host handles an `Event` → finish)."""

from __future__ import annotations

import ctypes
import json
import logging
from collections.abc import Callable
from typing import Any

from . import _bindings as b
from ._managed import Managed
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
    take_bytes,
    text,
    view,
)
from .alipayplus import Answer, Response, Store

log = logging.getLogger("cardbridge")

WechatPayPtr = ctypes.POINTER(b.cardbridge_wechatpay)
EventPtr = ctypes.POINTER(b.cardbridge_wechatpay_event)
ResponsePtr = ctypes.POINTER(b.cardbridge_http_response)


class Event(Managed[Any]):
    """A verified, decrypted card event (e.g. `USER_CARD.CREATE`) waiting for
    the host, from `WechatPay.callback_begin`.

    `id`, `event_type`, `kind` (`USER_CARD.CREATE`, `USER_CARD.DELETE`,
    `SYNC_USER_POINT`, `POINT_EXCHANGE_COUPON` or the raw event type),
    `resource` (the decrypted resource: sensitive fields such as
    `phone_number` in cleartext, so never log it), `undecryptable` (paths of
    sensitive fields that could not be decrypted) and `raw` (the event view as
    JSON bytes) are copies, readable after `close()`.

    Finish it with `WechatPay.callback_finish` (or `event.finish(...)`).
    Closing an unfinished event releases its claim, so WeChat's redelivery
    reaches the host again. The event keeps its integration alive.
    """

    _exclusive = True  # single owner in C: calls on it are serialised

    id: str
    event_type: str
    kind: str
    resource: dict[str, Any]
    undecryptable: list[str]
    earlier_claims: int
    """Earlier claims on this notification id that expired before this delivery took it over."""
    raw: bytes
    wechatpay: WechatPay

    def __init__(self, handle: Any, wechatpay: WechatPay) -> None:
        super().__init__(handle)
        self.wechatpay = wechatpay
        data = ctypes.POINTER(ctypes.c_uint8)()
        size = ctypes.c_size_t()
        invoke(b.cardbridge_wechatpay_event_json, handle, ctypes.byref(data), ctypes.byref(size))
        self.raw = view(data, size.value)
        parsed = json.loads(self.raw)
        self.id = parsed["id"]
        self.event_type = parsed["event_type"]
        self.kind = parsed["kind"]
        self.resource = parsed["resource"]
        self.undecryptable = parsed["undecryptable"]
        self.earlier_claims = int(b.cardbridge_wechatpay_event_earlier_claims(handle))

    @property
    def redelivered(self) -> bool:
        """True when an earlier host's claim on this notification expired before it
        was accepted: it may already have acted, so check before acting again."""
        return self.earlier_claims > 0

    def finish(self, accepted: bool = True, reason: str = "", now_ms: int | None = None) -> Response:
        """Same as `self.wechatpay.callback_finish(self, accepted, reason, now_ms)`."""
        return self.wechatpay.callback_finish(self, accepted, reason, now_ms)

    def _delete(self, handle: Any) -> None:
        b.cardbridge_wechatpay_event_free(handle)

    def __repr__(self) -> str:
        # Never the resource: it holds personal data in cleartext.
        return f"Event(id={self.id!r}, kind={self.kind!r}, closed={self.closed})"


class WechatPay(Managed[Any]):
    """One merchant's WeChat Pay card-member integration: configuration, keys
    (WeChat Pay public key and/or platform certificates), the client and the
    callback handler over one durable store.

    Thread-safe: one instance may serve many threads at once.

    `config` is a dict or JSON text with `mchid`, `merchant_serial_no`,
    `merchant_private_key` (PEM), `api_v3_key` (32 ASCII bytes) and a WeChat
    Pay key source (`wechatpay_public_key_id` + `wechatpay_public_key`,
    `platform_certificates`, or `certificate_mode: True`); optionally
    `base_url`, timeouts, `retry`, ... (see `cardbridge_wechatpay_new` in
    cardbridge.h). Without `store`, the SQLite store at `config["store_path"]`
    is opened. Raises `ConfigError` (e.g. an APIv3 key that is not 32 bytes)
    or `InvalidKeyError`.
    """

    def __init__(self, config: JsonInput, store: Store | None = None) -> None:
        if store is not None and not isinstance(store, Store):
            raise TypeError(f"store must be a Store or None, not {type(store).__name__}")
        cfg = json_bytes(config, "config")
        out = WechatPayPtr()
        if store is None:
            invoke(b.cardbridge_wechatpay_new, cfg, len(cfg), None, ctypes.byref(out))
        else:
            with store._borrow() as s:
                invoke(b.cardbridge_wechatpay_new, cfg, len(cfg), s, ctypes.byref(out))
        super().__init__(out)

    def _delete(self, handle: Any) -> None:
        b.cardbridge_wechatpay_free(handle)

    # ---- client

    def _answer(self, fn: Any, request: JsonInput, *options: Any) -> dict[str, Any]:
        data = json_bytes(request, "input")
        out = b.cardbridge_bytes()
        with self._borrow() as wp:
            invoke(fn, wp, data, len(data), *options, ctypes.byref(out))
        answer: dict[str, Any] = json.loads(take_bytes(out))
        return answer

    def confirm(
        self, input: JsonInput, *, deadline_ms: int | None = None, cancel: CancelToken | None = None
    ) -> dict[str, Any]:
        """Syncs a card-opening result (`POST .../user-cards/{code}/confirm`).

        `input` holds `user_card_code`, `card_id` and the body members
        (`brand_id`, `openid`, `user_card_confirm_state`, optional
        `phone_number`, `user_information`, `level`, ...) with sensitive
        fields in cleartext: the library encrypts them. Validated first, then
        recorded in the outbox: the same (card_id, user_card_code) is
        confirmed once, repeats return the stored answer, ambiguous outcomes
        are retried and reconciled.

        Returns `{"status", "body" (the user card, sensitive fields
        decrypted), "undecryptable", "request_id"}`. Raises `ValidationError`
        (`field`, `limit`), `InvalidJsonError`, `IdempotencyConflict`,
        `RemoteFailed` (a 4xx; `remote_code`, `remote_message`,
        `remote_detail`, `http_status`), `RemoteUnknown` (retry later with the
        same input), `ConfigError`.

        `deadline_ms` bounds this call's retries (instead of the configured
        deadline); `cancel` (a `CancelToken`) stops them between attempts.
        Either way an unfinished confirm raises `RemoteUnknown` and stays
        pending. `cardbridge.aio.confirm` runs it off the event loop.
        """
        with call_options(deadline_ms, cancel) as options:
            return self._answer(b.cardbridge_wechatpay_confirm_with_options, input, options)

    def prepare_confirm(self, input: JsonInput) -> Any:
        """Bring your own transport, step 1: validates, encrypts and records
        the confirm like `confirm` and returns the signed request to send
        yourself (`cardbridge.transport.Prepared`; a read-back `GET` of the
        card first when the entry existed before), or the stored answer (a
        dict) when the confirm is already final. Nothing is sent."""
        from . import transport

        return transport._prepare(b.cardbridge_wechatpay_confirm_prepare, self, json_bytes(input, "input"))

    def complete_confirm(
        self,
        prepared: Any,
        *,
        status: int = 0,
        headers: HeadersInput = (),
        body: bytes = b"",
        reply: int | None = None,
    ) -> Any:
        """Bring your own transport, step 2: verifies and judges the answer to
        `prepared` as `confirm` does and returns the answer (the same dict
        `confirm` returns) or the next `Prepared` — after an ambiguous outcome
        a read-back of the card, never a blind re-send. Consumes `prepared`."""
        from . import transport

        r = transport.Reply.ANSWERED if reply is None else transport.Reply(reply)
        return transport._complete(b.cardbridge_wechatpay_confirm_complete, self, prepared, r, status, headers, body)

    def confirm_over(self, input: JsonInput, send: Callable[[Any], Any]) -> dict[str, Any]:
        """`confirm` over your own HTTP stack; `send` as for
        `AlipayPlus.issue_card_over`."""
        from . import transport

        return transport.drive(self.prepare_confirm(input), self.complete_confirm, send)

    def get_user_card(self, input: JsonInput) -> dict[str, Any]:
        """Reads a user card; `input` holds `user_card_code`, `brand_id`,
        `card_id`, `openid`. Answer and errors as for `confirm` (no outbox)."""
        return self._answer(b.cardbridge_wechatpay_get_user_card, input)

    def update_user_card(
        self, input: JsonInput, *, deadline_ms: int | None = None, cancel: CancelToken | None = None
    ) -> dict[str, Any]:
        """Updates a user card (`PATCH`); `input` holds `user_card_code`,
        `card_id` and the body members, sensitive fields in cleartext. Answer,
        errors and options as for `confirm` (no outbox)."""
        with call_options(deadline_ms, cancel) as options:
            return self._answer(b.cardbridge_wechatpay_update_user_card_with_options, input, options)

    def sync_user_points(self, input: JsonInput) -> dict[str, Any]:
        """Syncs a point balance; `input` holds `out_request_no`, `brand_id`,
        `card_id`, `openid`, `user_card_code`, `point_balance`. Answer and
        errors as for `confirm`."""
        return self._answer(b.cardbridge_wechatpay_sync_user_points, input)

    # ---- the rest of the brand family (§4): same input / answer / errors as `confirm`

    def create_card_template(self, input: JsonInput) -> dict[str, Any]:
        """Creates a card template (`POST .../cards`) whose `notify_url` receives the card events; keyed by (`brand_id`, `out_request_no`) in the outbox."""
        return self._answer(b.cardbridge_wechatpay_create_card_template, input)

    def list_card_templates(self, input: JsonInput) -> dict[str, Any]:
        """Lists card templates; `input`: `brand_id`, optional `state`, `offset`, `limit` (1-20)."""
        return self._answer(b.cardbridge_wechatpay_list_card_templates, input)

    def get_card_template(self, input: JsonInput) -> dict[str, Any]:
        """Reads a card template; `input`: `brand_id`, `card_id`."""
        return self._answer(b.cardbridge_wechatpay_get_card_template, input)

    def update_card_template(self, input: JsonInput) -> dict[str, Any]:
        """Updates a card template (`PATCH`); `input`: `card_id`, `brand_id` and the members to change. Reconciled by reading it back."""
        return self._answer(b.cardbridge_wechatpay_update_card_template, input)

    def remove_card_template(self, input: JsonInput) -> dict[str, Any]:
        """Removes a card template (`POST .../invalidate` or `DELETE`, per `card_template_removal`); `input`: `brand_id`, `card_id`."""
        return self._answer(b.cardbridge_wechatpay_remove_card_template, input)

    def list_user_cards(self, input: JsonInput) -> dict[str, Any]:
        """Lists a user's cards; `input`: `brand_id`, `openid`, optional `user_card_state`, `offset`, `limit` (1-20). Sensitive fields decrypted."""
        return self._answer(b.cardbridge_wechatpay_list_user_cards, input)

    def invalidate_user_card(self, input: JsonInput) -> dict[str, Any]:
        """Invalidates a user card, irreversibly; `input`: `user_card_code`, `card_id`, `brand_id`, `openid`, `invalid_reason` (required)."""
        return self._answer(b.cardbridge_wechatpay_invalidate_user_card, input)

    def import_user_card(self, input: JsonInput) -> dict[str, Any]:
        """Imports an existing member by openid; sensitive fields in cleartext are encrypted, `Wechatpay-Serial` is sent; keyed by (`card_id`, `user_card_code`)."""
        return self._answer(b.cardbridge_wechatpay_import_user_card, input)

    def import_user_card_by_phone(self, input: JsonInput) -> dict[str, Any]:
        """Imports a member by phone: `ConfigError` unless `import_by_phone_enabled` (not live on the platform)."""
        return self._answer(b.cardbridge_wechatpay_import_user_card_by_phone, input)

    def create_pre_auth_token(self, input: JsonInput) -> dict[str, Any]:
        """A join-component token (valid 1 h); `input`: `brand_id`, `card_id`, `openid`. A fresh one per call."""
        return self._answer(b.cardbridge_wechatpay_create_pre_auth_token, input)

    def create_pay_view_token(self, input: JsonInput) -> dict[str, Any]:
        """A payment-code component token (10 min, single use); `input`: `brand_id`, `card_id`, `openid`."""
        return self._answer(b.cardbridge_wechatpay_create_pay_view_token, input)

    def create_user_feed(self, input: JsonInput) -> dict[str, Any]:
        """Posts a member feed; `input`: `brand_id`, `card_id`, `user_card_code`, `openid`, `out_request_no`, and `cell` (or `cell_message`)."""
        return self._answer(b.cardbridge_wechatpay_create_user_feed, input)

    def confirm_exchange_coupon(self, input: JsonInput) -> dict[str, Any]:
        """Answers a `POINT_EXCHANGE_COUPON` event; keyed by (`brand_id`, `record_id`). See `exchange_confirm_input`."""
        return self._answer(b.cardbridge_wechatpay_confirm_exchange_coupon, input)

    def create_membership_activity(self, input: JsonInput) -> dict[str, Any]:
        """Creates a membership coupon activity; keyed by (`brand_id`, `out_request_no`)."""
        return self._answer(b.cardbridge_wechatpay_create_membership_activity, input)

    def list_membership_activities(self, input: JsonInput) -> dict[str, Any]:
        """Lists membership activities; `input`: `brand_id`, optional `card_id`, `activity_state`, `offset`, `limit`."""
        return self._answer(b.cardbridge_wechatpay_list_membership_activities, input)

    def get_membership_activity(self, input: JsonInput) -> dict[str, Any]:
        """Reads a membership activity; `input`: `brand_id`, `activity_id`."""
        return self._answer(b.cardbridge_wechatpay_get_membership_activity, input)

    def update_membership_activity(self, input: JsonInput) -> dict[str, Any]:
        """Updates a membership activity (`title`, `sub_title`, `begin_time`, `end_time`); reconciled by reading it back."""
        return self._answer(b.cardbridge_wechatpay_update_membership_activity, input)

    def terminate_membership_activity(self, input: JsonInput) -> dict[str, Any]:
        """Terminates a membership activity; `input`: `brand_id`, `activity_id`."""
        return self._answer(b.cardbridge_wechatpay_terminate_membership_activity, input)

    def resume_pending(self) -> list[dict[str, Any]]:
        """Re-sends every pending outbox entry (`confirm` and the other mutating
        calls; e.g. at start-up after a crash);
        one report per entry: `{"id", "ok": True, "answer"}` or
        `{"id", "ok": False, "code", "name", "message"}`."""
        out = b.cardbridge_bytes()
        with self._borrow() as wp:
            invoke(b.cardbridge_wechatpay_resume_pending, wp, ctypes.byref(out))
        report: list[dict[str, Any]] = json.loads(take_bytes(out))
        return report

    def metrics(self) -> dict[str, Any]:
        """This integration's counters, shaped as `AlipayPlus.metrics()`
        (`inbound` has the API `callback`: `accepted`, `redeliver`,
        `refused`, `replayed`)."""
        out = b.cardbridge_bytes()
        with self._borrow() as wp:
            invoke(b.cardbridge_wechatpay_metrics, wp, ctypes.byref(out))
        snapshot: dict[str, Any] = json.loads(take_bytes(out))
        return snapshot

    def refresh_certificates(self) -> int:
        """Downloads and installs the platform certificates; returns how many
        are valid. `ConfigError` when the merchant has none (public-key mode)."""
        count = ctypes.c_size_t()
        with self._borrow() as wp:
            invoke(b.cardbridge_wechatpay_refresh_certificates, wp, ctypes.byref(count))
        return count.value

    # ---- card-event callbacks: begin -> host handles -> finish

    def callback_begin(
        self,
        method: str,
        target: str,
        headers: HeadersInput,
        body: bytes,
        now_ms: int | None = None,
    ) -> Response | Event:
        """Step 1 of a card-event callback: verifies the `Wechatpay-*` headers
        and signature over the raw body (timestamp within 300 s of `now_ms`,
        Unix milliseconds as everywhere in the library, default the current
        time), decrypts the resource and de-duplicates by notification id.

        Returns a `Response` to send at once (401/400 refusals, a processed
        duplicate's acknowledgement, 500 while the same event is being
        handled) or an `Event` the host must handle and finish.
        """
        m, t = text(method, "method"), text(target, "target")
        raw = _body(body)
        headers_array = HeaderArray(header_pairs(headers))
        when = _now_ms(now_ms)
        response, event = ResponsePtr(), EventPtr()
        with self._borrow() as wp:
            invoke(
                b.cardbridge_wechatpay_callback_begin,
                wp, m, len(m), t, len(t), headers_array.array, headers_array.count,
                raw, len(raw), when, ctypes.byref(response), ctypes.byref(event),
            )
        if response:
            return Response(response)
        return Event(event, self)

    def callback_finish(
        self,
        event: Event,
        accepted: bool = True,
        reason: str = "",
        now_ms: int | None = None,
    ) -> Response:
        """Step 2: `accepted` acknowledges the event (200 `SUCCESS`, or 204 per
        configuration) and records it, so duplicates are acknowledged without
        the host; `accepted=False` answers 500 `FAIL` with `reason` (no
        personal data) so WeChat redelivers.

        Raises `AlreadyUsedError` when the event was already finished.
        """
        if not isinstance(event, Event):
            raise TypeError(f"event must be an Event, not {type(event).__name__}")
        if not isinstance(accepted, bool):
            raise TypeError(f"accepted must be bool, not {type(accepted).__name__}")
        why = text(reason, "reason")
        when = _now_ms(now_ms)
        response = ResponsePtr()
        with self._borrow() as wp, event._borrow() as e:
            invoke(b.cardbridge_wechatpay_callback_finish, wp, e, accepted, why, len(why), when, ctypes.byref(response))
        return Response(response)


def validate_wechat(operation: str, input: JsonInput, options: JsonInput | None = None) -> dict[str, Any]:
    """Validates `input` for a card-member `operation` (`createCardTemplate`,
    `importUserCard`, ...) and returns the request it would send, without
    sending: `{"method", "target", "body"}` (sensitive fields shown as
    `<encrypted>`). `options` holds wire-form configuration members
    (`card_template_removal`, `user_feed_content_member`, ...). Raises
    `ValidationError`, `InvalidJsonError`, `ConfigError`, `InvalidParameterError`."""
    op = text(operation, "operation")
    data = json_bytes(input, "input")
    opts = None if options is None else json_bytes(options, "options")
    out = b.cardbridge_bytes()
    invoke(b.cardbridge_wechatpay_validate, op, len(op), data, len(data), opts, len(opts or b""), ctypes.byref(out))
    result: dict[str, Any] = json.loads(take_bytes(out))
    return result


def exchange_confirm_input(
    event: Event, success: bool, coupon_code: str | None = None, fail_reason: str | None = None
) -> dict[str, Any]:
    """The `confirm_exchange_coupon` input answering a `POINT_EXCHANGE_COUPON`
    event: its identifying members plus the decision."""
    keys = ("record_id", "exchange_coupon_template_id", "brand_id", "card_id", "openid", "user_card_code")
    out: dict[str, Any] = {k: event.resource[k] for k in keys if k in event.resource}
    out["state"] = "POINT_EXCHANGE_COUPON_SUCCESS" if success else "POINT_EXCHANGE_COUPON_FAIL"
    if coupon_code is not None:
        out["coupon_code"] = coupon_code
    if fail_reason is not None:
        out["fail_reason"] = fail_reason
    return out


#: What `handle(event)` returns to `handle_wechat_callback`: True or None
#: accept the event; False asks WeChat to redeliver it.
Verdict = bool | None


def handle_wechat_callback(
    wechatpay: WechatPay,
    method: str,
    target: str,
    headers: HeadersInput,
    body: bytes,
    handle: Callable[[Event], Verdict],
    now_ms: int | None = None,
) -> Answer:
    """Handles one card-event callback from WeChat Pay end to end and returns
    the `(status, headers, body)` to send back.

    `handle(event)` is asked only for a verified, new event and returns True
    or None to accept it. If it returns False, raises or returns anything
    else, that is logged (event id and kind only) and WeChat gets a 500, so
    it redelivers the event later. A failure of the library itself (e.g.
    `InternalError` from the store) propagates; the event is then released,
    so WeChat's redelivery reaches `handle` again.
    """
    outcome = wechatpay.callback_begin(method, target, headers, body, now_ms)
    if isinstance(outcome, Response):
        with outcome:
            return outcome.answer()
    with outcome as event:
        try:
            verdict = handle(event)
            if verdict is not None and not isinstance(verdict, bool):
                raise TypeError(f"handle must return True, False or None, not {type(verdict).__name__}")
            accepted = verdict is not False
            reason = "" if accepted else "declined by the merchant"
            if not accepted:
                log.warning("cardbridge: WeChat Pay event %s (%s) declined; WeChat will redeliver it",
                            event.id, event.kind)
        except Exception:
            log.exception("cardbridge: handling WeChat Pay event %s (%s) failed; WeChat will redeliver it",
                          event.id, event.kind)
            accepted, reason = False, "merchant error"
        with wechatpay.callback_finish(event, accepted, reason, now_ms) as response:
            return response.answer()
