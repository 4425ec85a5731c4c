"""The Alipay+ flow through the library against the emulator: inbound
notifications (begin → decide → finish), duplicates, refusals, issueCard with
faults, and error details."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

import cardbridge
from cardbridge import AlipayPlus, Call, Response
from cardbridge.testing import Emulator, EmulatorError, sample_registration

from conftest import CARD_FIELDS, NOTIFY, REGISTER_DATE, integration_config, key, result_of, send


def registration_call(alipay: AlipayPlus, driver: Emulator, request_id: str) -> Call:
    outcome = send(alipay, driver.request(NOTIFY, sample_registration(request_id)))
    assert isinstance(outcome, Call), outcome
    return outcome


def test_notification_flow_with_duplicate_replayed_byte_for_byte(
    alipay: AlipayPlus, driver: Emulator
) -> None:
    request = driver.request(NOTIFY, sample_registration("PY-FLOW-1"))
    call = alipay.begin(request.method, request.target, request.headers, request.body)
    assert isinstance(call, Call)
    assert call.api is cardbridge.Api.NOTIFY_CARD_REGISTRATION
    assert call.api_name == "notifyCardRegistration"
    assert call.raw == request.body
    assert call.request["requestId"] == "PY-FLOW-1" == call.request_id

    answer = alipay.finish(call, {})
    assert answer.status == 200
    assert result_of(answer) == {"resultCode": "SUCCESS", "resultStatus": "S", "resultMessage": "Success"}
    assert answer.header("signature") is not None and answer.header("Response-Time") is not None
    assert driver.verify_answer(request, answer)
    call.close()

    duplicate = driver.request(NOTIFY, request.body)
    again = send(alipay, duplicate)
    assert isinstance(again, Response), "a duplicate is answered without the host"
    assert again.body == answer.body
    assert driver.verify_answer(duplicate, again)


def test_answer_does_not_verify_with_another_key(alipay: AlipayPlus, driver: Emulator) -> None:
    request = driver.request(NOTIFY, sample_registration("PY-VERIFY-1"))
    call = send(alipay, request)
    assert isinstance(call, Call)
    answer = call.finish()
    assert driver.verify_answer(request, answer)
    with Emulator(merchant_public_key=key("test_platform_public.pem")) as other:
        assert not other.verify_answer(request, answer)
    call.close()


@pytest.mark.parametrize(
    "tamper", ["bad-signature", "probe", "malformed-header", "wrong-client-id"]
)
def test_tampered_request_is_refused_with_access_denied(
    alipay: AlipayPlus, driver: Emulator, tamper: str
) -> None:
    request = driver.request(NOTIFY, sample_registration("PY-TAMPER-1"), tamper=tamper)
    outcome = send(alipay, request)
    assert isinstance(outcome, Response), "the host is never asked"
    result = result_of(outcome)
    assert (result["resultStatus"], result["resultCode"]) == ("F", "ACCESS_DENIED")


def test_invalid_field_is_refused_with_param_illegal(alipay: AlipayPlus, driver: Emulator) -> None:
    body = sample_registration("PY-INVALID-1")
    del body["customerId"]
    outcome = send(alipay, driver.request(NOTIFY, body))
    assert isinstance(outcome, Response)
    result = result_of(outcome)
    assert (result["resultStatus"], result["resultCode"]) == ("F", "PARAM_ILLEGAL")
    assert "customerId" in result["resultMessage"]


def test_undecided_call_blocks_duplicates_until_closed(alipay: AlipayPlus, driver: Emulator) -> None:
    call = registration_call(alipay, driver, "PY-CLAIM-1")
    busy = send(alipay, driver.request(NOTIFY, call.raw))
    assert isinstance(busy, Response)
    assert result_of(busy)["resultStatus"] == "U"
    call.close()  # releases the claim
    retry = send(alipay, driver.request(NOTIFY, call.raw))
    assert isinstance(retry, Call)
    retry.finish_unknown()
    retry.close()


def test_host_failure_decision_is_replayed(alipay: AlipayPlus, driver: Emulator) -> None:
    call = registration_call(alipay, driver, "PY-FAIL-1")
    decision = {"result": {"resultStatus": "F", "resultCode": "PROCESS_FAIL", "resultMessage": "member blocked"}}
    answer = alipay.finish(call, json.dumps(decision))
    assert result_of(answer) == decision["result"]
    replay = send(alipay, driver.request(NOTIFY, call.raw))
    assert isinstance(replay, Response) and replay.body == answer.body


def test_invalid_decision_raises_and_keeps_the_call_usable(alipay: AlipayPlus, driver: Emulator) -> None:
    call = registration_call(alipay, driver, "PY-BADDECISION-1")
    with pytest.raises(cardbridge.ValidationError) as info:
        alipay.finish(call, {"result": {"resultStatus": "S", "resultCode": "NOT_A_CODE", "resultMessage": "x"}})
    assert info.value.field is not None and "resultCode" in info.value.field
    assert result_of(alipay.finish(call))["resultCode"] == "SUCCESS"
    call.close()


def test_issue_card_through_a_fault_returns_the_card(
    alipay: AlipayPlus, driver: Emulator, emulator: Emulator
) -> None:
    call = registration_call(alipay, driver, "PY-ISSUE-1")
    request = alipay.build_issue_card(call, "M-000123", REGISTER_DATE, CARD_FIELDS)
    assert request["requestId"] == "PY-ISSUE-1"
    assert request["customerId"] == call.request["customerId"]
    call.finish()
    call.close()

    issued_before = emulator.cards_issued()
    emulator.push_fault("unknown")
    answer = alipay.issue_card(request)
    assert answer["result"]["resultStatus"] == "S"
    assert isinstance(answer["cardNo"], str) and answer["cardNo"]
    assert emulator.hits("PY-ISSUE-1") == 2, "the U answer was retried once"
    assert emulator.cards_issued() == issued_before + 1

    # The same request again: the stored outcome, nothing sent.
    assert alipay.issue_card(json.dumps(request)) == answer
    assert emulator.hits("PY-ISSUE-1") == 2


def test_build_issue_card_accepts_datetime_and_json_text(alipay: AlipayPlus) -> None:
    import datetime as dt

    registration = sample_registration("PY-BUILD-1")
    when = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    built = cardbridge.build_issue_card(json.dumps(registration), "M-1", when, json.dumps(CARD_FIELDS))
    assert built["registerDate"] == REGISTER_DATE
    assert built["cardFields"][1]["fieldValue"] == {"value": 100, "currency": "SGD"}
    with pytest.raises(ValueError, match="time zone"):
        cardbridge.build_issue_card(registration, "M-1", dt.datetime(2026, 1, 1), CARD_FIELDS)


def test_build_issue_card_takes_the_optional_members() -> None:
    import datetime as dt

    registration = sample_registration("PY-BUILD-OPT")
    expires = dt.datetime(2027, 11, 23, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    built = cardbridge.build_issue_card(
        registration, "M-1", REGISTER_DATE, CARD_FIELDS,
        external_card_no="CARD-0001", expire_date=expires, extend_info='{"tier":1}',
    )
    assert built["externalCardNo"] == "CARD-0001"
    assert built["expireDate"] == "2027-11-23T00:00:00+08:00"
    assert built["extendInfo"] == '{"tier":1}'
    plain = cardbridge.build_issue_card(registration, "M-1", REGISTER_DATE, CARD_FIELDS)
    assert not {"externalCardNo", "expireDate", "extendInfo"} & plain.keys()
    # Validated when built, naming the field path; just outside each limit.
    for kwargs, field, limit in [
        ({"extend_info": "x" * 2049}, "issueCard.extendInfo", "2048"),
        ({"external_card_no": "x" * 65}, "issueCard.externalCardNo", "64"),
        ({"expire_date": "tomorrow"}, "issueCard.expireDate", None),
    ]:
        with pytest.raises(cardbridge.ValidationError) as info:
            cardbridge.build_issue_card(registration, "M-1", REGISTER_DATE, CARD_FIELDS, **kwargs)
        assert info.value.field == field
        if limit is not None:
            assert info.value.limit == limit
        assert "xxxx" not in str(info.value)
    assert cardbridge.build_issue_card(
        registration, "M-1", REGISTER_DATE, CARD_FIELDS, extend_info="x" * 2048
    )["extendInfo"] == "x" * 2048
    with pytest.raises(TypeError, match="external_card_no"):
        cardbridge.build_issue_card(registration, "M-1", REGISTER_DATE, CARD_FIELDS, external_card_no=5)  # type: ignore[arg-type]


def test_idempotency_conflict(alipay: AlipayPlus, emulator: Emulator) -> None:
    registration = sample_registration("PY-CONFLICT-1")
    first = alipay.build_issue_card(registration, "M-1", REGISTER_DATE, CARD_FIELDS)
    alipay.issue_card(first)
    second = dict(first, externalCustomerId="M-2")
    with pytest.raises(cardbridge.IdempotencyConflict) as info:
        alipay.issue_card(second)
    assert info.value.field == "issueCard.requestId"
    assert info.value.code == 202 and info.value.name == "CARDBRIDGE_RESULT_IDEMPOTENCY_CONFLICT"


def test_validation_error_carries_field_and_limit(alipay: AlipayPlus) -> None:
    registration = sample_registration("PY-VALID-1")
    with pytest.raises(cardbridge.ValidationError) as info:
        alipay.build_issue_card(registration, "x" * 65, REGISTER_DATE, CARD_FIELDS)
    e = info.value
    assert (e.code, e.name) == (200, "CARDBRIDGE_RESULT_VALIDATION")
    assert e.field == "issueCard.externalCustomerId"
    assert e.limit == "64"
    assert "issueCard.externalCustomerId" in e.message and str(e).startswith("CARDBRIDGE_RESULT_VALIDATION: ")
    assert e.remote_code is None and e.http_status is None

    bad = alipay.build_issue_card(registration, "M-1", REGISTER_DATE, CARD_FIELDS)
    bad["registerDate"] = "yesterday"
    with pytest.raises(cardbridge.ValidationError) as info:
        alipay.issue_card(bad)
    assert info.value.field == "issueCard.registerDate"


def test_invalid_json_error(alipay: AlipayPlus) -> None:
    with pytest.raises(cardbridge.InvalidJsonError) as info:
        alipay.issue_card("{not json")
    assert info.value.code == 201


def test_remote_failed_carries_the_platform_answer(alipay: AlipayPlus, emulator: Emulator) -> None:
    request = alipay.build_issue_card(sample_registration("PY-REMOTE-F"), "M-9", REGISTER_DATE, CARD_FIELDS)
    emulator.push_fault("fail", code="USER_NOT_EXIST", message="no such user")
    with pytest.raises(cardbridge.RemoteFailed) as info:
        alipay.issue_card(request)
    e = info.value
    assert isinstance(e, cardbridge.RemoteError)
    assert (e.code, e.name) == (500, "CARDBRIDGE_RESULT_REMOTE_FAILED")
    assert e.remote_code == "USER_NOT_EXIST"
    assert e.remote_message == "no such user"
    assert e.remote_status == "F"
    assert e.http_status == 200
    assert "USER_NOT_EXIST" in e.message
    # Final: the stored outcome is the same failure, nothing re-sent.
    hits = emulator.hits("PY-REMOTE-F")
    with pytest.raises(cardbridge.RemoteFailed):
        alipay.issue_card(request)
    assert emulator.hits("PY-REMOTE-F") == hits


def test_remote_unknown_then_resume_pending(emulator: Emulator) -> None:
    config = integration_config(
        emulator.url, retry={"max_attempts": 1, "base_delay_ms": 1, "max_delay_ms": 1, "deadline_ms": 10000}
    )
    with cardbridge.Store.memory() as store, AlipayPlus(config, store) as ap:
        request = ap.build_issue_card(sample_registration("PY-RESUME-1"), "M-5", REGISTER_DATE, CARD_FIELDS)
        emulator.push_fault("http_status", status=502)
        with pytest.raises(cardbridge.RemoteUnknown) as info:
            ap.issue_card(request)
        assert (info.value.attempts, info.value.http_status) == (1, 502)
        assert info.value.outbox_id and "PY-RESUME-1" in info.value.outbox_id
        assert store.outbox_count_pending() == 1
        (pending,) = store.outbox_list(state="pending")
        assert pending["id"] == info.value.outbox_id and pending["last_status"] == 502
        assert "body" not in pending and "PY-RESUME-1\",\"customerId" not in json.dumps(pending)
        assert [a["status"] for a in store.outbox_get(pending["id"])["attempt_log"]] == [502]
        with pytest.raises(cardbridge.InvalidArgumentError) as bad:
            store.outbox_list(state="later")
        assert bad.value.field == "query.state"
        report = ap.resume_pending()
        assert len(report) == 1 and report[0]["ok"] is True, report
        assert report[0]["id"] == info.value.outbox_id, "the id the error named"
        assert store.outbox_count_pending() == 0
        assert store.outbox_list(state="succeeded")[0]["id"] == info.value.outbox_id
        assert report[0]["response"]["cardNo"]
        assert ap.resume_pending() == []


def test_purge_expired_counts_old_records(alipay: AlipayPlus, driver: Emulator) -> None:
    call = registration_call(alipay, driver, "PY-PURGE-1")
    call.finish()
    call.close()
    assert alipay.purge_expired() == 0
    in_a_year = time.time_ns() // 1_000_000 + 366 * 24 * 3600 * 1000
    assert alipay.purge_expired(now_ms=in_a_year) >= 1


def test_validate_normalises_and_reports(alipay: AlipayPlus) -> None:
    registration = sample_registration("PY-V-1")
    normalised = cardbridge.validate("notifyCardRegistration", registration, "inbound")
    assert json.loads(normalised) == registration
    assert AlipayPlus.validate("notifyCardRegistration", json.dumps(registration), cardbridge.Direction.INBOUND)
    with pytest.raises(cardbridge.ValidationError) as info:
        cardbridge.validate("notifyCardRegistration", dict(registration, appId="9" * 33), "outbound")
    assert (info.value.field, info.value.limit) == ("notifyCardRegistration.appId", "32")
    with pytest.raises(ValueError, match="inbound"):
        cardbridge.validate("issueCard", "{}", "sideways")
    with pytest.raises(cardbridge.InvalidArgumentError):
        cardbridge.validate("issueCard", "{}", 7)


def test_handle_http_three_lines(
    alipay: AlipayPlus, driver: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[dict[str, Any]] = []

    def decide(call: Call) -> dict[str, Any]:
        seen.append(call.request)
        return {}

    request = driver.request(NOTIFY, sample_registration("PY-HTTP-1"))
    status, headers, body = cardbridge.handle_http(
        alipay, request.method, request.target, dict(request.headers), request.body, decide=decide
    )
    assert status == 200
    assert json.loads(body)["result"]["resultCode"] == "SUCCESS"
    assert any(n.lower() == "signature" for n, _ in headers)
    assert [s["requestId"] for s in seen] == ["PY-HTTP-1"]

    # Duplicate: decide is not asked again, same bytes.
    again = cardbridge.handle_http(alipay, "POST", NOTIFY, request.headers, request.body, decide=decide)
    assert again.body == body and len(seen) == 1

    # A failing decide answers U and logs; the platform's retry reaches decide again.
    def broken(call: Call) -> None:
        raise RuntimeError("member database is down")

    retry_request = driver.request(NOTIFY, sample_registration("PY-HTTP-2"))
    with caplog.at_level(logging.ERROR, logger="cardbridge"):
        answer = cardbridge.handle_http(
            alipay, "POST", NOTIFY, retry_request.headers, retry_request.body, decide=broken
        )
    assert json.loads(answer.body)["result"]["resultStatus"] == "U"
    assert "member database is down" in caplog.text
    # So does a decision the library refuses.
    invalid = cardbridge.handle_http(
        alipay, "POST", NOTIFY, retry_request.headers, retry_request.body,
        decide=lambda call: {"result": {"resultStatus": "X", "resultCode": "SUCCESS", "resultMessage": "?"}},
    )
    assert json.loads(invalid.body)["result"]["resultStatus"] == "U"
    later = cardbridge.handle_http(alipay, "POST", NOTIFY, retry_request.headers, retry_request.body, decide=decide)
    assert json.loads(later.body)["result"]["resultCode"] == "SUCCESS"
    assert [s["requestId"] for s in seen] == ["PY-HTTP-1", "PY-HTTP-2"]


def test_sqlite_store_keeps_answers_across_integrations(
    tmp_path: Path, driver: Emulator
) -> None:
    db = tmp_path / "cardbridge.db"
    config = integration_config()
    request = driver.request(NOTIFY, sample_registration("PY-SQLITE-1"))
    with cardbridge.Store.sqlite(db) as store, AlipayPlus(config, store) as ap:
        call = send(ap, request)
        assert isinstance(call, Call)
        first = call.finish()
        call.close()
    with AlipayPlus(dict(config, store_path=str(db))) as ap:
        replay = send(ap, request)
        assert isinstance(replay, Response) and replay.body == first.body


def test_config_errors(emulator: Emulator) -> None:
    with pytest.raises(cardbridge.ConfigError) as info:
        AlipayPlus(integration_config(emulator.url, unknown_member=1), cardbridge.Store.memory())
    assert info.value.code == 100
    with pytest.raises(cardbridge.InvalidKeyError) as key_info:
        AlipayPlus(integration_config(merchant_private_key="not a key"), cardbridge.Store.memory())
    assert "merchant_private_key" in key_info.value.message
    assert "not a key" not in key_info.value.message
    with pytest.raises(cardbridge.ConfigError, match="store_path"):
        AlipayPlus(integration_config())


def test_keys_round_trip() -> None:
    with cardbridge.PrivateKey.from_pem(key("test_merchant_private.pem")) as private:
        pem = private.public_key_pem()
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    with cardbridge.PublicKey.from_pem(pem):
        pass
    with pytest.raises(cardbridge.InvalidKeyError):
        cardbridge.PrivateKey.from_pem(key("rsa1024_private.pem"))


def test_emulator_fault_validation(emulator: Emulator) -> None:
    with pytest.raises(EmulatorError) as info:
        emulator.push_fault("meltdown")
    assert (info.value.status, info.value.field) == (400, "fault")
    assert emulator.issue_card_hits() >= 0


def test_an_expired_claim_makes_the_next_delivery_redelivered_and_a_late_finish_gets_the_stored_answer(
    emulator: Emulator, driver: Emulator
) -> None:
    config = integration_config(emulator.url)
    config["claim_lease_ms"] = 100
    with cardbridge.Store.memory() as store, AlipayPlus(config, store) as alipay:
        slow = registration_call(alipay, driver, "PY-REDELIVER-1")
        assert (slow.earlier_claims, slow.redelivered) == (0, False)
        time.sleep(0.15)
        again = registration_call(alipay, driver, "PY-REDELIVER-1")
        assert (again.earlier_claims, again.redelivered) == (1, True)
        answer = alipay.finish(again, {})
        assert result_of(answer)["resultStatus"] == "S"
        decision = {"result": {"resultStatus": "F", "resultCode": "PROCESS_FAIL", "resultMessage": "late"}}
        late = alipay.finish(slow, decision)
        assert late.body == answer.body, "the stored answer, never the late host's own"
        slow.close()
        again.close()


def test_a_refused_call_carries_its_signature_diagnosis(alipay: AlipayPlus, driver: Emulator) -> None:
    request = driver.request(NOTIFY, sample_registration("PY-DIAG-1"), tamper="bad-signature")
    outcome = send(alipay, request)
    assert isinstance(outcome, Response)
    assert result_of(outcome)["resultCode"] == "ACCESS_DENIED"
    d = outcome.diagnosis
    assert d is not None and d["check"] == "mismatch", d
    assert d["body_len"] == len(request.body)
    assert "PY-DIAG-1" not in json.dumps(d), "never the body"
    # Any other answer carries none.
    body = sample_registration("PY-DIAG-2")
    del body["customerId"]
    refused = send(alipay, driver.request(NOTIFY, body))
    assert isinstance(refused, Response) and refused.diagnosis is None
