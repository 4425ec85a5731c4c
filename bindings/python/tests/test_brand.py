"""The WeChat Pay brand member-card family from Python against the loopback
emulator: templates, user-card import / list / invalidate, feeds, the
points-for-coupon answer and membership activities; one lost answer per
kind of reconcile; validation before sending."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import cardbridge
from cardbridge import WechatPay
from cardbridge.testing import Emulator

from test_wechat import BRAND_ID, OPENID, PHONE, emulator_config, wechat_config

BASE = "/v3/brand/partner/card-member"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(emulator_config()) as e:
        yield e


@pytest.fixture
def wp(emu: Emulator) -> Iterator[WechatPay]:
    with cardbridge.Store.memory() as store, WechatPay(wechat_config(emu.url), store) as w:
        yield w


def template(out: str) -> dict[str, Any]:
    return {
        "out_request_no": out, "brand_id": BRAND_ID, "appid": "wxea9c30890f48d5ae", "card_type": "NORMAL",
        "card_title": "测试卡", "card_color": "#FFFF00", "card_picture_url": "https://wxpaylogo.qpic.cn/x/0",
        "code_mode": "SYSTEM_ALLOCATE", "code_type": "QR_CODE", "benefits": "会员折扣",
        "notify_url": "https://merchant.example/wechat/card-events", "valid_date_information": {"type": "PERMANENT"},
    }


def test_the_brand_lifecycle(wp: WechatPay, emu: Emulator) -> None:
    created = wp.create_card_template(template("T-1"))["body"]
    card_id = created["card_id"]
    assert created["notify_url"] == "https://merchant.example/wechat/card-events"
    assert wp.list_card_templates({"brand_id": BRAND_ID, "limit": 20})["body"]["total_count"] == 1
    assert wp.update_card_template({"brand_id": BRAND_ID, "card_id": card_id, "card_title": "金卡"})["body"][
        "card_title"] == "金卡"
    assert wp.get_card_template({"brand_id": BRAND_ID, "card_id": card_id})["body"]["card_title"] == "金卡"

    imported = wp.import_user_card({
        "brand_id": BRAND_ID, "card_id": card_id, "openid": OPENID, "user_card_code": "IMP-1",
        "phone_number": PHONE, "date_information": {"type": "PERMANENT"}, "pickup_time": "2024-05-20T13:29:35+08:00",
    })
    assert imported["body"]["phone_number"] == PHONE
    assert emu.user_card("IMP-1")["user_card_state"] == "EFFECTIVE"
    listed = wp.list_user_cards({"brand_id": BRAND_ID, "openid": OPENID})["body"]
    assert listed["total_count"] == 1 and listed["data"][0]["phone_number"] == PHONE

    feed = wp.create_user_feed({"brand_id": BRAND_ID, "card_id": card_id, "user_card_code": "IMP-1",
                                "openid": OPENID, "out_request_no": "F-1", "cell": "15_1200_1"})
    assert feed["body"]["cell"] == "15_1200_1"
    exchange = wp.confirm_exchange_coupon({
        "record_id": "REC-1", "exchange_coupon_template_id": "0Flpo7FqTQ", "brand_id": BRAND_ID,
        "card_id": card_id, "openid": OPENID, "user_card_code": "IMP-1",
        "state": "POINT_EXCHANGE_COUPON_SUCCESS", "coupon_code": "C-1",
    })
    assert exchange["body"]["state"] == "POINT_EXCHANGE_COUPON_SUCCESS"

    act = wp.create_membership_activity({
        "out_request_no": "A-1", "brand_id": BRAND_ID, "card_id": card_id, "activity_channel": "MECHANT_APP_COMPONENT",
        "title": "入会享券", "sub_title": "5张满减券", "begin_time": "2030-01-20T13:29:35+08:00",
        "end_time": "2030-01-29T13:29:35+08:00", "apply_total": 10,
        "product_coupon_stock_list": [{"product_coupon_id": "7011", "stock_id": "9806"}],
    })["body"]
    activity_id = act["activity_id"]
    assert wp.list_membership_activities({"brand_id": BRAND_ID})["body"]["total_count"] == 1
    wp.update_membership_activity({"brand_id": BRAND_ID, "activity_id": activity_id, "title": "t2", "sub_title": "s2",
                                   "begin_time": "2030-02-01T00:00:00+08:00", "end_time": "2030-02-02T00:00:00+08:00"})
    assert wp.get_membership_activity({"brand_id": BRAND_ID, "activity_id": activity_id})["body"]["title"] == "t2"
    ended = wp.terminate_membership_activity({"brand_id": BRAND_ID, "activity_id": activity_id})["body"]
    assert ended["activity_state"] == "MEMBERSHIP_ACTIVITY_TERMINATED"

    who = {"brand_id": BRAND_ID, "card_id": card_id, "openid": OPENID}
    assert wp.create_pre_auth_token(who)["body"]["token"] != wp.create_pre_auth_token(who)["body"]["token"]
    assert wp.create_pay_view_token(who)["body"]["expire_time"]

    gone = wp.invalidate_user_card({"user_card_code": "IMP-1", "card_id": card_id, "brand_id": BRAND_ID,
                                    "openid": OPENID, "invalid_reason": "member left"})
    assert gone["body"]["user_card_state"] == "INVALID"
    assert wp.remove_card_template({"brand_id": BRAND_ID, "card_id": card_id})["body"]["state"] == "CARD_INVALID"


def test_a_lost_answer_is_never_applied_twice(wp: WechatPay, emu: Emulator) -> None:
    # Keyed by out_request_no: re-sent, one template.
    emu.push_wechat_fault("drop")
    card_id = wp.create_card_template(template("T-LOST"))["body"]["card_id"]
    assert emu.wechat_hits(f"{BASE}/cards") == 2
    assert wp.list_card_templates({"brand_id": BRAND_ID})["body"]["total_count"] == 1
    # Read back: the invalidation is found applied, not re-sent.
    emu.add_user_card("U-1", card_id, OPENID, BRAND_ID)
    emu.push_wechat_fault("drop")
    gone = wp.invalidate_user_card({"user_card_code": "U-1", "card_id": card_id, "brand_id": BRAND_ID,
                                    "openid": OPENID, "invalid_reason": "left"})
    assert gone["body"]["user_card_state"] == "INVALID"
    assert emu.wechat_hits(f"{BASE}/user-cards/U-1/invalidate") == 1, "no second invalidate"
    assert emu.wechat_hits(f"{BASE}/user-cards/U-1") == 2, "the invalidate, then one read-back"


def test_bad_input_is_refused_before_sending(wp: WechatPay, emu: Emulator) -> None:
    with pytest.raises(cardbridge.ValidationError) as e:
        wp.list_card_templates({"brand_id": BRAND_ID, "limit": 21})
    assert e.value.field == "listCardTemplates.limit" and e.value.limit == "20"
    with pytest.raises(cardbridge.ValidationError) as e:
        wp.invalidate_user_card({"user_card_code": "1", "card_id": "c", "brand_id": BRAND_ID, "openid": OPENID})
    assert e.value.field == "invalidateUserCard.invalid_reason"
    with pytest.raises(cardbridge.ConfigError):
        wp.import_user_card_by_phone({"brand_id": BRAND_ID})
    assert emu.wechat_hits("/") == 0


def test_validate_wechat_builds_the_request_without_sending() -> None:
    req = cardbridge.validate_wechat("removeCardTemplate", {"brand_id": BRAND_ID, "card_id": "c1"},
                                     {"card_template_removal": "delete"})
    assert req == {"method": "DELETE", "target": f"{BASE}/cards/c1?brand_id={BRAND_ID}", "body": ""}
    with pytest.raises(cardbridge.CardbridgeError) as e:
        cardbridge.validate_wechat("noSuchCall", {})
    assert e.value.field == "operation"
