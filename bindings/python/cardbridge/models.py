"""Typed shapes of the WeChat Pay payloads a CRM handles most: the confirm
input, the points-sync input and the user card the answers carry.

They are `TypedDict`s: plain dicts at run time, so every call that takes a
dict (`WechatPay.confirm`, `sync_user_points`, ...) takes them too, and a
type checker (mypy) sees the member names and types. Plain dicts and JSON
text stay accepted; the library validates either form the same way before
anything is signed.

Unknown values are kept: enum-like members are typed `str` (the known values
are listed as constants, e.g. `CONFIRM_STATES`), and members these types do
not name pass through untouched, so an answer's `body` read as a `UserCard`
loses nothing. Sensitive members (`phone_number`, `user_information` values)
are cleartext here: the library encrypts them on the way out and decrypts
them on the way in. Do not log them.

    from cardbridge.models import ConfirmInput, user_card

    confirm: ConfirmInput = {
        "user_card_code": code, "card_id": card_id, "brand_id": brand_id,
        "openid": openid, "user_card_confirm_state": "CREATE_CARD_SUCCESS",
        "phone_number": phone,
    }
    card = user_card(wechat.confirm(confirm))  # a UserCard
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict, cast

#: `user_card_confirm_state` values of a confirm (others are refused by validation).
CONFIRM_STATES = ("CREATE_CARD_SUCCESS", "CREATE_CARD_FAIL")
#: `user_card_state` values known to this version (callbacks and API); others are kept as received.
USER_CARD_STATES = ("NOT_EFFECTIVE", "UNACTIVATED", "EFFECTIVE", "EXPIRED", "UNAVAILABLE", "INVALID", "DELETE")


class CommonField(TypedDict):
    """One `user_information.common_field_list` entry; `value` in cleartext."""

    name: str
    value: str


class CustomField(TypedDict):
    """One `user_information.custom_field_list` entry; `user_chosen_values` in cleartext."""

    name: str
    user_chosen_values: NotRequired[list[str]]


class UserInformation(TypedDict, total=False):
    """`user_information` of a confirm or a user card."""

    common_field_list: list[CommonField]
    custom_field_list: list[CustomField]


class ConfirmInput(TypedDict):
    """The input of `WechatPay.confirm`: which user card, the outcome, and the
    card members to set (the sensitive ones in cleartext)."""

    user_card_code: str
    card_id: str
    brand_id: str
    openid: str
    #: One of `CONFIRM_STATES`.
    user_card_confirm_state: str
    phone_number: NotRequired[str]
    user_information: NotRequired[UserInformation]
    card_color: NotRequired[str]
    card_picture_url: NotRequired[str]
    level: NotRequired[str]
    attach: NotRequired[str]
    pickup_time: NotRequired[str]
    valid_date_information: NotRequired[dict[str, Any]]


class PointsSyncInput(TypedDict):
    """The input of `WechatPay.sync_user_points`."""

    out_request_no: str
    brand_id: str
    card_id: str
    openid: str
    user_card_code: str
    point_balance: int


class UserCard(TypedDict):
    """A user card as the answers carry it (`confirm`, `get_user_card`,
    `invalidate_user_card`, `list_user_cards` items); other members are kept."""

    user_card_code: str
    card_id: str
    openid: str
    brand_id: str
    #: One of `USER_CARD_STATES`, or a value this version does not know.
    user_card_state: str
    phone_number: NotRequired[str]
    user_information: NotRequired[UserInformation]
    level: NotRequired[str]
    card_type: NotRequired[str]


_USER_CARD_REQUIRED = ("user_card_code", "card_id", "openid", "brand_id", "user_card_state")


def user_card(answer_or_body: Mapping[str, Any]) -> UserCard:
    """The user card of an answer (`{"status", "body", ...}`) or of its `body`,
    as a `UserCard` (a dict with every member kept). Raises `ValueError`
    naming the first missing member (never a value)."""
    body = answer_or_body.get("body", answer_or_body) if "status" in answer_or_body else answer_or_body
    if not isinstance(body, Mapping):
        raise ValueError("the answer has no user card body")
    for name in _USER_CARD_REQUIRED:
        if not isinstance(body.get(name), str):
            raise ValueError(f"user card member {name!r} is missing or not a string")
    return cast(UserCard, body if isinstance(body, dict) else dict(body))
