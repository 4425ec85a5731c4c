"""WeChat Pay from Python: card-event callbacks (begin → Event → finish,
duplicates, refusals, redelivery, the `handle_wechat_callback` helper),
confirm through the outbox (faults, validation, conflicts, final errors),
the rest of the user-card lifecycle, certificate mode, resume after a
restart, misuse and threads. Everything is loopback."""

from __future__ import annotations

import gc
import json
import logging
import threading
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import cardbridge
from cardbridge import Event, Response, WechatPay
from cardbridge.testing import Emulator, EmulatorError, HttpRequest, sample_user_card_create

from conftest import REPO, key

PUB_KEY_ID = "PUB_KEY_ID_0114232134912410000000000000"
MCHID = "1900000001"
SERIAL = "5F1C72E2A8931B72A2E13AF8DEE92471EB397115"
API_V3 = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb"
CARD_ID = "pbLatjvWOibDc5-TBnbUk1pD12o0"
OPENID = "obLatjnx9gnqzS4myYGmLZ7LgLBA"
BRAND_ID = "1004"
PHONE = "13800000000"
EVENT_TYPE = "BRAND_MEMBER_CARD_SP.USER_CARD.CREATE"
USER_CARDS = "/v3/brand/partner/card-member/user-cards"
EMULATOR_FIXTURES = REPO / "tests" / "fixtures" / "wechatpay" / "emulator"


def emulator_config(**extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        # The test platform pair plays WeChat Pay's public-key pair.
        "wechatpay_private_key": key("test_platform_private.pem"),
        "public_key_id": PUB_KEY_ID,
        "merchant_public_key": key("test_merchant_public.pem"),
        "mchid": MCHID,
        "merchant_serial_no": SERIAL,
        "api_v3_key": API_V3,
    }
    config.update(extra)
    return config


def wechat_config(base_url: str, max_attempts: int = 3, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "mchid": MCHID,
        "merchant_serial_no": SERIAL,
        "merchant_private_key": key("test_merchant_private.pem"),
        "api_v3_key": API_V3,
        "wechatpay_public_key_id": PUB_KEY_ID,
        "wechatpay_public_key": key("test_platform_public.pem"),
        "base_url": base_url,
        # Generous budget, short waits: faults are retried quickly.
        "connect_timeout_ms": 10000,
        "read_timeout_ms": 30000,
        "retry": {"max_attempts": max_attempts, "base_delay_ms": 5, "max_delay_ms": 20, "deadline_ms": 60000},
    }
    config.update(extra)
    return config


@pytest.fixture
def wx_emulator() -> Iterator[Emulator]:
    with Emulator(emulator_config()) as emu:
        yield emu


@pytest.fixture
def wechat(wx_emulator: Emulator) -> Iterator[WechatPay]:
    with cardbridge.Store.memory() as store, WechatPay(wechat_config(wx_emulator.url), store) as wp:
        yield wp


def mint(emu: Emulator, code: str, tamper: str = "none") -> HttpRequest:
    """A signed USER_CARD.CREATE callback for card `code`."""
    return emu.callback(EVENT_TYPE, "user_card", sample_user_card_create(code, CARD_ID, OPENID),
                        tamper=tamper)


def deliver(wechat: WechatPay, request: HttpRequest) -> Response | Event:
    """Feeds a callback to the integration as an HTTP server would."""
    return wechat.callback_begin(request.method, request.target, request.headers, request.body)


def expect_event(outcome: Response | Event) -> Event:
    assert isinstance(outcome, Event), f"expected an event, got {outcome!r}"
    return outcome


def expect_response(outcome: Response | Event) -> Response:
    if isinstance(outcome, Event):
        outcome.close()
        pytest.fail("the host was asked to handle an event that should have been answered")
    return outcome


def code_of(response: Response) -> str:
    code: str = response.json()["code"]
    return code


def confirm_input(code: str, **extra: Any) -> dict[str, Any]:
    """The confirm a CRM sends once it has opened the member account."""
    return {
        "user_card_code": code,
        "card_id": CARD_ID,
        "brand_id": BRAND_ID,
        "openid": OPENID,
        "phone_number": PHONE,
        "user_information": {"common_field_list": [{"name": "USER_FORM_FLAG_NAME", "value": "Li Lei"}]},
        "user_card_confirm_state": "CREATE_CARD_SUCCESS",
        **extra,
    }


# ---------------------------------------------------------------------------
# Callbacks
# ---------------------------------------------------------------------------


def test_card_opening_callback_reaches_the_host_once_with_the_phone_in_cleartext(
    wechat: WechatPay, wx_emulator: Emulator
) -> None:
    request = mint(wx_emulator, "478515832665")
    assert request.method == "POST"
    assert PHONE.encode() not in request.body, "the phone is encrypted on the wire"

    with expect_event(deliver(wechat, request)) as event:
        assert event.kind == "USER_CARD.CREATE"
        assert event.event_type == EVENT_TYPE
        assert event.id
        assert event.resource["phone_number"] == PHONE, "decrypted for the host"
        assert event.resource["user_card_code"] == "478515832665"
        assert event.resource["user_information"]["common_field_list"][0]["value"] == "张三"
        assert event.undecryptable == []
        assert json.loads(event.raw)["resource"] == event.resource
        assert PHONE not in repr(event), "repr never shows personal data"

        with event.finish() as answer:
            assert (answer.status, code_of(answer)) == (200, "SUCCESS")
        with pytest.raises(cardbridge.AlreadyUsedError) as info:
            wechat.callback_finish(event)
        assert info.value.field == "event"

    # WeChat redelivers the same notification: acknowledged without the host.
    with expect_response(deliver(wechat, request)) as duplicate:
        assert (duplicate.status, code_of(duplicate)) == (200, "SUCCESS")


@pytest.mark.parametrize(
    ("tamper", "status"),
    [
        ("probe", 401),
        ("stale", 401),
        ("wrong-serial", 401),
        ("bad-signature", 401),
        ("bad-tag", 400),
        ("missing-header", 400),
    ],
)
def test_probes_stale_and_forged_callbacks_are_refused_without_the_host(
    wechat: WechatPay, wx_emulator: Emulator, tamper: str, status: int
) -> None:
    with expect_response(deliver(wechat, mint(wx_emulator, "2002", tamper))) as refused:
        assert (refused.status, code_of(refused)) == (status, "FAIL")
    # The refusal claimed nothing: a genuine callback still reaches the host.
    expect_event(deliver(wechat, mint(wx_emulator, "2002"))).close()


def test_callback_time_is_checked_against_now(wechat: WechatPay, wx_emulator: Emulator) -> None:
    signed_at = 1_900_000_000
    plain = sample_user_card_create("2010", CARD_ID, OPENID)
    request = wx_emulator.callback(EVENT_TYPE, "user_card", plain, now=signed_at)
    parts = (request.method, request.target, request.headers, request.body)
    with expect_response(wechat.callback_begin(*parts)) as stale:
        assert stale.status == 401, "signed far from the current time"
    with expect_event(wechat.callback_begin(*parts, now_ms=(signed_at + 299) * 1000)) as event:
        with wechat.callback_finish(event, now_ms=(signed_at + 299) * 1000) as answer:
            assert answer.status == 200


def test_host_failure_makes_wechat_redeliver(wechat: WechatPay, wx_emulator: Emulator) -> None:
    request = mint(wx_emulator, "1001")
    with expect_event(deliver(wechat, request)) as event:
        # While the host holds it, a redelivery is told to come back later.
        with expect_response(deliver(wechat, request)) as busy:
            assert (busy.status, code_of(busy)) == (500, "FAIL")
        with event.finish(accepted=False, reason="CRM busy") as answer:
            assert (answer.status, code_of(answer)) == (500, "FAIL")
            assert answer.json()["message"] == "CRM busy"

    # The next delivery reaches the host again; closing it unfinished also releases it.
    expect_event(deliver(wechat, request)).close()
    with expect_event(deliver(wechat, request)) as event:
        assert event.resource["user_card_code"] == "1001"
        assert event.finish().status == 200
    assert expect_response(deliver(wechat, request)).status == 200


def test_handle_wechat_callback_accepts_declines_and_redelivers(
    wechat: WechatPay, wx_emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def accept(event: Event) -> None:
        seen.append(event.resource["phone_number"])

    request = mint(wx_emulator, "3001")
    parts = (request.method, request.target, request.headers, request.body)
    status, headers, body = cardbridge.handle_wechat_callback(wechat, *parts, handle=accept)
    assert (status, json.loads(body)["code"]) == (200, "SUCCESS")
    assert seen == [PHONE]
    # A duplicate never reaches the handler.
    assert cardbridge.handle_wechat_callback(wechat, *parts, handle=accept).status == 200
    assert seen == [PHONE]

    def broken(event: Event) -> bool:
        raise RuntimeError("CRM down")

    def decline(event: Event) -> bool:
        return False

    def confused(event: Event) -> Any:
        return "yes"

    request = mint(wx_emulator, "3002")
    parts = (request.method, request.target, request.headers, request.body)
    caplog.set_level(logging.WARNING, logger="cardbridge")
    for handler, level in ((broken, logging.ERROR), (decline, logging.WARNING), (confused, logging.ERROR)):
        caplog.clear()
        answer = cardbridge.handle_wechat_callback(wechat, *parts, handle=handler)
        assert (answer.status, json.loads(answer.body)["code"]) == (500, "FAIL"), handler.__name__
        assert b"CRM down" not in answer.body, "the host's error stays in the log"
        [record] = [r for r in caplog.records if r.name == "cardbridge"]  # the wrapper's own record
        assert record.levelno == level and "redeliver" in record.getMessage()
        [native] = [  # the library's own event
            r for r in caplog.records if r.name == "cardbridge.callback" and r.getMessage().startswith("callback answer")
        ]
        assert native.levelno == logging.WARNING and "result=redeliver" in native.getMessage()
        assert PHONE not in record.getMessage() and "张三" not in caplog.text, "no personal data in the log"
    # Each failure released the event: the redelivery reaches a working host.
    assert cardbridge.handle_wechat_callback(wechat, *parts, handle=lambda e: True).status == 200
    assert cardbridge.handle_wechat_callback(wechat, *parts, handle=broken).status == 200, "acknowledged duplicate"


# ---------------------------------------------------------------------------
# Confirm and the rest of the lifecycle
# ---------------------------------------------------------------------------


def test_confirm_opens_the_card_once(wechat: WechatPay, wx_emulator: Emulator) -> None:
    wx_emulator.add_user_card("478515832665", CARD_ID, OPENID, BRAND_ID)
    assert wx_emulator.user_card("478515832665")["user_card_state"] == "UNACTIVATED"

    answer = wechat.confirm(confirm_input("478515832665"))
    assert answer["status"] == 200
    assert answer["body"]["user_card_state"] == "EFFECTIVE"
    assert answer["body"]["phone_number"] == PHONE, "answer field decrypted"
    assert answer["undecryptable"] == []
    assert "request_id" in answer
    assert wx_emulator.confirm_hits("478515832665") == 1
    assert wx_emulator.confirms_applied() == 1
    card = wx_emulator.user_card("478515832665")
    assert card["phone_number"] == PHONE, "WeChat decrypted what the library encrypted"
    assert card["user_information"]["common_field_list"][0]["value"] == "Li Lei"

    again = wechat.confirm(json.dumps(confirm_input("478515832665")))
    assert again["body"]["user_card_state"] == "EFFECTIVE"
    assert wx_emulator.confirm_hits("478515832665") == 1, "answered from the outbox, not sent"

    with pytest.raises(cardbridge.IdempotencyConflict) as info:
        wechat.confirm(confirm_input("478515832665", level="gold"))
    assert info.value.code == 202
    assert wx_emulator.confirm_hits("478515832665") == 1


def test_invalid_confirm_names_the_field_and_limit_and_sends_nothing(
    wechat: WechatPay, wx_emulator: Emulator
) -> None:
    with pytest.raises(cardbridge.ValidationError) as info:
        wechat.confirm(confirm_input("3003", card_color="yellow"))
    assert info.value.field == "confirm.card_color"
    with pytest.raises(cardbridge.ValidationError) as info:
        wechat.confirm(confirm_input("3004", phone_number="1" * 215))
    assert (info.value.field, info.value.limit) == ("confirm.phone_number", "214")
    with pytest.raises(cardbridge.InvalidJsonError):
        wechat.confirm(b"{not json")
    assert wx_emulator.wechat_hits("/v3") == 0


def test_sixteen_byte_api_v3_key_is_a_config_error() -> None:
    with pytest.raises(cardbridge.ConfigError) as info:
        WechatPay(wechat_config("http://127.0.0.1:9", api_v3_key="testMchAPIv3Key0"), cardbridge.Store.memory())
    assert (info.value.code, info.value.field) == (100, "config.api_v3_key")
    assert "api_v3_key" in info.value.message and "32" in info.value.message
    assert "testMchAPIv3Key0" not in str(info.value), "the key is never echoed"
    with pytest.raises(EmulatorError) as refused:
        Emulator(emulator_config(), api_v3_key="testMchAPIv3Key0")
    assert (refused.value.error, refused.value.field) == ("INVALID_CONFIG", "api_v3_key")
    assert "testMchAPIv3Key0" not in str(refused.value)


@pytest.mark.parametrize(
    "fault",
    [
        {"fault": "status", "status": 500, "code": "SYSTEM_ERROR", "message": "系统错误"},
        {"fault": "status", "status": 429, "code": "RATELIMIT_EXCEEDED"},
        {"fault": "accepted_202"},
        {"fault": "bad_signature"},
        {"fault": "drop"},
    ],
    ids=lambda f: "-".join(str(v) for v in list(f.values())[:2]),
)
def test_emulator_faults_are_retried(wechat: WechatPay, wx_emulator: Emulator, fault: dict[str, Any]) -> None:
    wx_emulator.add_user_card("4004", CARD_ID, OPENID, BRAND_ID)
    wx_emulator.push_wechat_fault(**fault)
    answer = wechat.confirm(confirm_input("4004"))
    assert answer["body"]["user_card_state"] == "EFFECTIVE"
    # A fault that may hide an applied confirm (an answer that does not verify, a dropped
    # connection) is followed by a read-back, which finds the card EFFECTIVE: no second
    # confirm. An answer that proves nothing was applied (500, 429, 202) allows the re-send.
    applied_before_fault = fault["fault"] in ("bad_signature", "drop")
    expected_hits = 1 if applied_before_fault else 2
    assert wx_emulator.confirm_hits("4004") == expected_hits, "one confirm reached the platform per send"
    assert wx_emulator.confirms_applied() == 1


def test_a_final_4xx_is_remote_failed(wechat: WechatPay, wx_emulator: Emulator) -> None:
    wx_emulator.add_user_card("4005", CARD_ID, OPENID, BRAND_ID)
    wx_emulator.push_wechat_fault("status", status=400, code="PARAM_ERROR", message="参数错误")
    with pytest.raises(cardbridge.RemoteFailed) as info:
        wechat.confirm(confirm_input("4005"))
    assert (info.value.remote_code, info.value.http_status) == ("PARAM_ERROR", 400)
    assert info.value.remote_message == "参数错误"
    assert wx_emulator.confirm_hits("4005") == 1, "a 4xx is not retried"


def test_get_update_and_points_sync(wechat: WechatPay, wx_emulator: Emulator) -> None:
    wx_emulator.add_user_card("6006", CARD_ID, OPENID, BRAND_ID)
    ids = {"brand_id": BRAND_ID, "card_id": CARD_ID, "openid": OPENID}
    got = wechat.get_user_card({"user_card_code": "6006", **ids})
    assert (got["body"]["user_card_code"], got["body"]["user_card_state"]) == ("6006", "UNACTIVATED")

    updated = wechat.update_user_card({"user_card_code": "6006", **ids, "level": "gold", "phone_number": "13900000000"})
    assert (updated["body"]["level"], updated["body"]["phone_number"]) == ("gold", "13900000000")
    card = wx_emulator.user_card("6006")
    assert (card["level"], card["phone_number"]) == ("gold", "13900000000")

    synced = wechat.sync_user_points(
        {"out_request_no": "P1", "user_card_code": "6006", "point_balance": 120, **ids}
    )
    assert synced["status"] == 204
    assert wx_emulator.wechat_hits("/v3/brand/partner/card-member/user-points/sync") == 1

    with pytest.raises(cardbridge.RemoteFailed) as info:
        wechat.get_user_card({"user_card_code": "404", **ids})
    assert info.value.http_status == 404
    # Public-key mode: there are no platform certificates to download.
    with pytest.raises(cardbridge.ConfigError):
        wechat.refresh_certificates()


def test_certificate_mode_downloads_the_platform_certificate() -> None:
    certificate = {
        "pem": (EMULATOR_FIXTURES / "platform_cert.pem").read_text(),
        "private_key": (EMULATOR_FIXTURES / "platform_private.pem").read_text(),
    }
    with Emulator(emulator_config(platform_certificate=certificate)) as emu:
        config = wechat_config(emu.url, certificate_mode=True)
        del config["wechatpay_public_key_id"], config["wechatpay_public_key"]
        with WechatPay(config, cardbridge.Store.memory()) as wechat:
            # A callback signed with the certificate: its serial triggers the download.
            expect_event(deliver(wechat, mint(emu, "7007"))).close()
            assert emu.wechat_hits("/v3/certificates") == 1
            assert wechat.refresh_certificates() == 1
            assert emu.wechat_hits("/v3/certificates") == 2


def test_resume_pending_finishes_a_confirm_interrupted_before_a_restart(
    wx_emulator: Emulator, tmp_path: Path
) -> None:
    wx_emulator.add_user_card("5005", CARD_ID, OPENID, BRAND_ID)
    db = tmp_path / "wechat.db"
    with cardbridge.Store.sqlite(db) as store, WechatPay(wechat_config(wx_emulator.url, 4), store) as wechat:
        # Four attempts and the card read-back all meet a 503: outcome unknown.
        for _ in range(5):
            wx_emulator.push_wechat_fault("status", status=503, code="SERVICE_UNAVAILABLE")
        with pytest.raises(cardbridge.RemoteUnknown):
            wechat.confirm(confirm_input("5005"))
    assert wx_emulator.confirms_applied() == 0

    with WechatPay(wechat_config(wx_emulator.url, 4, store_path=str(db))) as wechat:
        [entry] = wechat.resume_pending()
        assert entry["ok"] is True and entry["id"], entry
        assert entry["answer"]["body"]["user_card_state"] == "EFFECTIVE"
        assert wx_emulator.confirms_applied() == 1
        assert wechat.resume_pending() == [], "nothing left pending"


def test_sample_without_a_code_leaves_it_out() -> None:
    sample = sample_user_card_create("1", CARD_ID, OPENID)
    assert (sample["user_card_code"], sample["card_id"], sample["phone_number"]) == ("1", CARD_ID, PHONE)
    for code in (None, ""):
        without = sample_user_card_create(code, CARD_ID, OPENID)
        assert "user_card_code" not in without and without["openid"] == OPENID


# ---------------------------------------------------------------------------
# Misuse
# ---------------------------------------------------------------------------


def test_use_after_close_and_finishing_twice(wx_emulator: Emulator) -> None:
    wechat = WechatPay(wechat_config(wx_emulator.url), cardbridge.Store.memory())
    request = mint(wx_emulator, "8001")
    event = expect_event(deliver(wechat, request))
    event.close()
    event.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        event.finish()
    assert event.resource["user_card_code"] == "8001", "copies stay readable"

    event = expect_event(deliver(wechat, request))
    response = wechat.callback_finish(event)
    response.close()
    assert response.status == 200 and code_of(response) == "SUCCESS", "copies stay readable"
    with pytest.raises(cardbridge.AlreadyUsedError) as info:
        event.finish(accepted=False)
    assert info.value.code == 5
    event.close()

    wechat.close()
    assert wechat.closed
    for use in (
        lambda: wechat.confirm(confirm_input("8001")),
        lambda: deliver(wechat, request),
        lambda: wechat.resume_pending(),
        lambda: wechat.refresh_certificates(),
    ):
        with pytest.raises(ValueError, match="closed"):
            use()
    store = cardbridge.Store.memory()
    store.close()
    with pytest.raises(ValueError, match="closed"):
        WechatPay(wechat_config(wx_emulator.url), store)


def test_wrong_argument_types_raise_type_error(wechat: WechatPay, wx_emulator: Emulator) -> None:
    request = mint(wx_emulator, "8002")
    with pytest.raises(TypeError, match="body"):
        wechat.callback_begin("POST", "/", request.headers, request.body.decode())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="now"):
        wechat.callback_begin("POST", "/", request.headers, request.body, now_ms="now")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Event"):
        wechat.callback_finish("event")  # type: ignore[arg-type]
    with expect_event(deliver(wechat, request)) as event:
        with pytest.raises(TypeError, match="accepted"):
            wechat.callback_finish(event, accepted=1)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="reason"):
            wechat.callback_finish(event, reason=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="input"):
        wechat.confirm(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="store"):
        WechatPay(wechat_config(wx_emulator.url), "memory")  # type: ignore[arg-type]


def test_emulator_refusals_carry_the_field(wx_emulator: Emulator) -> None:
    with pytest.raises(EmulatorError) as info:
        wx_emulator.push_wechat_fault("status", status=1000)
    assert (info.value.status, info.value.field) == (400, "status")
    with pytest.raises(EmulatorError) as info:
        wx_emulator.push_wechat_fault("meltdown")
    assert (info.value.status, info.value.field) == (400, "fault")
    with pytest.raises(EmulatorError) as info:
        wx_emulator.user_card("404")
    assert (info.value.status, info.value.field) == (404, "user_card_code")
    with pytest.raises(EmulatorError) as info:
        wx_emulator.callback(EVENT_TYPE, "user_card", sample_user_card_create("1", CARD_ID, OPENID), tamper="wrong-key")
    assert (info.value.status, info.value.field) == (400, "tamper")
    with pytest.raises(EmulatorError) as info:
        wx_emulator.callback(EVENT_TYPE, "user_card", {"phone_number": "1" * 300})
    assert info.value.error == "PLAINTEXT_TOO_LONG"


def test_event_keeps_its_integration_alive(wx_emulator: Emulator) -> None:
    wechat = WechatPay(wechat_config(wx_emulator.url), cardbridge.Store.memory())
    ref = weakref.ref(wechat)
    event = expect_event(deliver(wechat, mint(wx_emulator, "8003")))
    del wechat
    gc.collect()
    assert ref() is not None, "the event holds its WechatPay"
    assert event.finish().status == 200
    del event
    gc.collect()
    assert ref() is None, "both are released once unused"


# ---------------------------------------------------------------------------
# Threads
# ---------------------------------------------------------------------------

THREADS = 8
PER_THREAD = 5


def test_eight_threads_handle_distinct_callbacks_on_one_integration(
    wechat: WechatPay, wx_emulator: Emulator
) -> None:
    barrier = threading.Barrier(THREADS)
    handled: list[str] = []
    lock = threading.Lock()

    def on_event(event: Event) -> None:
        with lock:
            handled.append(event.resource["user_card_code"])

    def worker(n: int) -> list[tuple[HttpRequest, int]]:
        requests = [mint(wx_emulator, f"9{n}{i:02d}") for i in range(PER_THREAD)]
        barrier.wait()
        out = []
        for request in requests:
            answer = cardbridge.handle_wechat_callback(
                wechat, request.method, request.target, request.headers, request.body, handle=on_event
            )
            out.append((request, answer.status))
        return out

    with ThreadPoolExecutor(THREADS) as pool:
        results = [r for batch in pool.map(worker, range(THREADS)) for r in batch]

    assert [status for _, status in results] == [200] * THREADS * PER_THREAD
    expected = sorted(f"9{n}{i:02d}" for n in range(THREADS) for i in range(PER_THREAD))
    assert sorted(handled) == expected, "every event reached the host exactly once"
    # Every one is now recorded: redeliveries are acknowledged without the host.
    for request, _ in results:
        assert expect_response(deliver(wechat, request)).status == 200
    assert len(handled) == THREADS * PER_THREAD


def test_typed_inputs_are_accepted_beside_plain_dicts(wechat: WechatPay, wx_emulator: Emulator) -> None:
    from cardbridge.models import CONFIRM_STATES, ConfirmInput, PointsSyncInput, UserCard, user_card

    wx_emulator.add_user_card("478515832666", CARD_ID, OPENID, BRAND_ID)
    typed: ConfirmInput = {
        "user_card_code": "478515832666", "card_id": CARD_ID, "brand_id": BRAND_ID, "openid": OPENID,
        "user_card_confirm_state": CONFIRM_STATES[0], "phone_number": PHONE,
        "user_information": {"common_field_list": [{"name": "USER_FORM_FLAG_NAME", "value": "Li Lei"}]},
    }
    answer = wechat.confirm(typed)
    card: UserCard = user_card(answer)
    assert card["user_card_state"] == "EFFECTIVE" and card["phone_number"] == PHONE
    assert card is answer["body"], "the answer's own dict, every member kept"
    # The plain-dict form of the same confirm is the same request: answered from the outbox.
    assert wechat.confirm(dict(typed))["body"] == answer["body"]
    assert wx_emulator.confirm_hits("478515832666") == 1

    points: PointsSyncInput = {
        "out_request_no": "PY-TYPED-PTS", "brand_id": BRAND_ID, "card_id": CARD_ID, "openid": OPENID,
        "user_card_code": "478515832666", "point_balance": 7,
    }
    assert wechat.sync_user_points(points)["status"] == 204

    # Validated like a plain dict: just outside a limit names the field path.
    too_long: ConfirmInput = {**typed, "user_card_code": "3004", "card_id": "c" * 33}
    with pytest.raises(cardbridge.ValidationError) as info:
        wechat.confirm(too_long)
    assert (info.value.field, info.value.limit) == ("confirm.card_id", "32")


def test_user_card_keeps_unknown_members_and_states() -> None:
    from cardbridge.models import user_card

    body = {"user_card_code": "1", "card_id": "c", "openid": "o", "brand_id": "b",
            "user_card_state": "FROZEN_BY_PLATFORM", "future_member": [1]}
    card = user_card({"status": 200, "body": body})
    assert card["user_card_state"] == "FROZEN_BY_PLATFORM"
    assert json.loads(json.dumps(card)) == body, "JSON round trip unchanged"
    assert user_card(body) is body
    with pytest.raises(ValueError, match="'openid'"):
        user_card({"user_card_code": "1", "card_id": "c", "brand_id": "b", "user_card_state": "EFFECTIVE"})


def test_a_refused_callback_carries_its_diagnosis(wechat: WechatPay, wx_emulator: Emulator) -> None:
    signed_at = 1_900_000_000
    plain = sample_user_card_create("2011", CARD_ID, OPENID)
    request = wx_emulator.callback(EVENT_TYPE, "user_card", plain, now=signed_at)
    parts = (request.method, request.target, request.headers, request.body)
    # Received an hour after it was signed: the clock, with the measured offset.
    with expect_response(wechat.callback_begin(*parts, now_ms=(signed_at + 3600) * 1000)) as stale:
        assert stale.status == 401
        assert stale.diagnosis is not None
        assert (stale.diagnosis["check"], stale.diagnosis["offset_ms"]) == ("clock_skew", -3_600_000)
    with expect_response(deliver(wechat, mint(wx_emulator, "2011", "bad-signature"))) as forged:
        assert forged.diagnosis is not None and forged.diagnosis["check"] == "mismatch"


@pytest.mark.skipif(
    cardbridge._bindings._cardbridge_test_wechatpay_set_clock is None,
    reason="library built without the ffi-test feature",
)
def test_the_confirm_timestamp_follows_the_handle_clock(wechat: WechatPay, wx_emulator: Emulator) -> None:
    from cardbridge import _bindings as b
    from cardbridge._util import invoke

    wx_emulator.add_user_card("478515832670", CARD_ID, OPENID, BRAND_ID)
    # This handle's clock runs an hour ahead: the platform refuses the timestamp it signed.
    with wechat._borrow() as handle:
        invoke(b.cardbridge_test_wechatpay_set_clock, handle, 2, 3_600_000)
    try:
        with pytest.raises(cardbridge.RemoteFailed) as info:
            wechat.confirm(confirm_input("478515832670"))
        assert info.value.remote_code == "SIGN_ERROR"
        detail = json.loads(info.value.remote_detail or "{}")
        d = detail["cardbridge_diagnosis"]
        assert -3_660_000 <= d["platform_clock_offset_ms"] <= -3_540_000, d
        assert "NTP" in d["likely_cause"]
    finally:
        with wechat._borrow() as handle:
            invoke(b.cardbridge_test_wechatpay_set_clock, handle, 0, 0)
