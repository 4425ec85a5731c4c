#!/usr/bin/env python3
"""A CRM opening WeChat Pay brand member cards, end to end.

What a real deployment does, with WeChat Pay played by the `cardbridge emulator`
binary (started in a subprocess by `cardbridge.testing`) and test keys:

1. a web endpoint (here http.server) is the merchant's `notify_url`: WeChat
   Pay posts a signed, encrypted `USER_CARD.CREATE` event when a user opens
   the card; cardbridge's `handle_wechat_callback` helper verifies the
   signature and timestamp, decrypts the resource (the phone number arrives in
   cleartext for the CRM), de-duplicates redeliveries and writes the answer;
   the CRM only handles the event (`on_event` creates the member);
2. the CRM then confirms the card opening (`confirm`): the library encrypts
   the sensitive fields, signs the request, records it in its SQLite outbox
   and retries ambiguous outcomes (here a 429) with the same request;
3. later it syncs the member's points, posts a member feed, answers a
   points-for-coupon exchange (`POINT_EXCHANGE_COUPON` → `confirm_exchange_coupon`,
   from the event handler) and, when the member leaves, invalidates the card;
0. before all that, the brand's card template is created with the `notify_url`
   where WeChat Pay sends these events.

Run: python3 examples/python/wechat_card_opening.py [--keys DIR] [--db FILE]
(with the cardbridge package installed, or CARDBRIDGE_LIBRARY_PATH set; the
`cardbridge` binary from the wheel, next to the library, or CARDBRIDGE_BIN).
Exits non-zero if anything unexpected happens, so it doubles as a smoke test.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cardbridge
from cardbridge import Event, Store, WechatPay, handle_wechat_callback
from cardbridge.testing import Emulator, HttpRequest, sample_user_card_create

MCHID = "1900000001"
MERCHANT_SERIAL = "5F1C72E2A8931B72A2E13AF8DEE92471EB397115"
API_V3_KEY = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb"
PUB_KEY_ID = "PUB_KEY_ID_0114232134912410000000000000"
EVENT_TYPE = "BRAND_MEMBER_CARD_SP.USER_CARD.CREATE"
CARD_ID = "pbLatjvWOibDc5-TBnbUk1pD12o0"
OPENID = "obLatjnx9gnqzS4myYGmLZ7LgLBA"
BRAND_ID = "1004"
CODE = "478515832665"
DEFAULT_KEYS = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "keys"

# The CRM's member database (a dict here; a table in real life).
members: dict[str, dict[str, Any]] = {}
members_lock = threading.Lock()


def on_event(event: Event, wechat: WechatPay) -> bool:
    """The CRM's handling of a verified, decrypted card event."""
    if event.kind == "POINT_EXCHANGE_COUPON":
        # Grant the coupon in the CRM, then tell WeChat Pay (keyed by record_id in the outbox:
        # a redelivered event confirms once). A real CRM may queue this to answer within 5 s.
        answer = wechat.confirm_exchange_coupon(cardbridge.exchange_confirm_input(event, True, coupon_code="CRM-C-1"))
        print(f"  CRM: exchange {event.resource['record_id']} confirmed ({answer['body']['state']})")
        return True
    if event.kind == "USER_CARD.CREATE":
        card = event.resource
        with members_lock:
            members[card["user_card_code"]] = {"phone": card.get("phone_number"), "openid": card["openid"]}
        print(f"  CRM: new member for card {card['user_card_code']} (phone received in cleartext)")
        return True
    return True  # other events (deletes, points) would be handled here


def make_endpoint(wechat: WechatPay) -> type[BaseHTTPRequestHandler]:
    class NotifyUrl(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            # The three lines any web framework needs:
            status, headers, answer = handle_wechat_callback(
                wechat, "POST", self.path, self.headers, body, handle=lambda e: on_event(e, wechat)
            )
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the output readable

    return NotifyUrl


def post(url: str, request: HttpRequest) -> tuple[int, bytes]:
    """Delivers a WeChat Pay callback to our endpoint over real HTTP."""
    skip = {"host", "content-length"}
    headers = {n: v for n, v in request.headers if n.lower() not in skip}
    http_request = urllib.request.Request(url, data=request.body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(http_request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:  # 4xx/5xx answers are outcomes here, not failures
        return e.code, e.read()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=Path, default=DEFAULT_KEYS, help="folder with the test_*.pem keys")
    parser.add_argument("--db", type=Path, help="SQLite store (default: a temporary file)")
    args = parser.parse_args()

    def key(name: str) -> str:
        return Path(args.keys, name).read_text()

    # The library's events (identifiers, labels, numbers; never personal data) go to the
    # standard `logging` module under cardbridge.*: configure it as for any other library.
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="  [log] %(levelname)s %(name)s %(message)s")

    problems: list[str] = []

    def expect(ok: bool, what: str) -> None:
        print(f"  {'ok' if ok else 'UNEXPECTED'}: {what}")
        if not ok:
            problems.append(what)

    print(f"cardbridge {cardbridge.__version__} ({cardbridge.version()})")
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "crm.db"
        with Emulator(
            # The test platform pair plays WeChat Pay's public-key pair.
            wechatpay_private_key=key("test_platform_private.pem"),
            public_key_id=PUB_KEY_ID,
            merchant_public_key=key("test_merchant_public.pem"),
            mchid=MCHID,
            merchant_serial_no=MERCHANT_SERIAL,
            api_v3_key=API_V3_KEY,
        ) as wechat_side, Store.sqlite(db) as store, WechatPay(
            {
                "mchid": MCHID,
                "merchant_serial_no": MERCHANT_SERIAL,
                "merchant_private_key": key("test_merchant_private.pem"),
                "api_v3_key": API_V3_KEY,
                "wechatpay_public_key_id": PUB_KEY_ID,
                "wechatpay_public_key": key("test_platform_public.pem"),
                "base_url": wechat_side.url,
                "retry": {"max_attempts": 4, "base_delay_ms": 50, "max_delay_ms": 500, "deadline_ms": 30000},
            },
            store,
        ) as wechat:
            print(f"WeChat Pay emulator at {wechat_side.url}; store {db}")

            server = ThreadingHTTPServer(("127.0.0.1", 0), make_endpoint(wechat))
            threading.Thread(target=server.serve_forever, daemon=True).start()
            notify_url = f"http://127.0.0.1:{server.server_address[1]}/wechat/notify"
            print(f"CRM notify_url at {notify_url}")
            try:
                print("\n0. The brand's card template, with the notify_url for its events")
                template = wechat.create_card_template({
                    "out_request_no": "CRM-TPL-0001", "brand_id": BRAND_ID, "appid": "wxea9c30890f48d5ae",
                    "card_type": "NORMAL", "card_title": "CRM Gold", "card_color": "#FFD700",
                    "card_picture_url": "https://crm.example/card.png", "code_mode": "SYSTEM_ALLOCATE",
                    "code_type": "QR_CODE", "benefits": "10% off",
                    # The public HTTPS address of the endpoint below (WeChat Pay requires https).
                    "notify_url": "https://crm.example/wechat/notify",
                    "valid_date_information": {"type": "PERMANENT"},
                })["body"]
                expect(template["state"] == "CARD_EFFECTIVE", f"template {template['card_id']} created")

                print("\n1. A user opens the card: WeChat Pay notifies USER_CARD.CREATE")
                resource = sample_user_card_create(CODE, CARD_ID, OPENID)
                event = wechat_side.callback(EVENT_TYPE, "user_card", resource)
                expect(resource["phone_number"].encode() not in event.body, "the phone is encrypted on the wire")
                status, answer = post(notify_url, event)
                print(f"  answer {status}: {answer.decode()}")
                expect(status == 200 and json.loads(answer)["code"] == "SUCCESS", "event acknowledged")
                expect(members.get(CODE, {}).get("phone") == resource["phone_number"], "CRM got the phone in cleartext")

                print("\n2. WeChat Pay redelivers the same notification")
                status, _ = post(notify_url, event)
                expect(status == 200 and len(members) == 1, "acknowledged, the CRM not asked again")

                print("\n3. A signature probe (WECHATPAY/SIGNTEST)")
                probe = wechat_side.callback(EVENT_TYPE, "user_card", resource, tamper="probe")
                status, _ = post(notify_url, probe)
                expect(status == 401, f"probe refused with {status}")

                print("\n4. The CRM confirms the card opening")
                wechat_side.add_user_card(CODE, CARD_ID, OPENID, BRAND_ID)  # WeChat holds the user's card
                wechat_side.push_wechat_fault("status", status=429, code="RATELIMIT_EXCEEDED")  # once: retried
                confirmed = wechat.confirm({
                    "user_card_code": CODE,
                    "card_id": CARD_ID,
                    "brand_id": BRAND_ID,
                    "openid": OPENID,
                    "phone_number": members[CODE]["phone"],  # cleartext in, encrypted by the library
                    "user_card_confirm_state": "CREATE_CARD_SUCCESS",
                })
                state = confirmed["body"]["user_card_state"]
                print(f"  card {CODE}: {state} after {wechat_side.confirm_hits(CODE)} attempts")
                expect(state == "EFFECTIVE", "card effective")
                expect(wechat_side.confirms_applied() == 1, "confirmed exactly once on WeChat's side")

                print("\n5. Points sync")
                synced = wechat.sync_user_points({
                    "out_request_no": "CRM-PTS-0001", "brand_id": BRAND_ID, "card_id": CARD_ID,
                    "openid": OPENID, "user_card_code": CODE, "point_balance": 120,
                })
                expect(synced["status"] == 204, "points synced")

                print("\n6. A member feed and a points-for-coupon exchange")
                card = {"brand_id": BRAND_ID, "card_id": CARD_ID, "openid": OPENID, "user_card_code": CODE}
                feed = wechat.create_user_feed({**card, "out_request_no": "CRM-FEED-0001", "cell": "+120 points"})
                expect(feed["status"] == 200, "feed posted")
                exchange = {**card, "record_id": "REC-0001", "exchange_coupon_template_id": "0Flpo7FqTQ",
                            "deduct_points": 100, "stock_id": "98065001"}
                status, _ = post(notify_url, wechat_side.callback(
                    "BRAND_MEMBER_CARD_SP.POINT_EXCHANGE_COUPON", "point_coupon", exchange))
                expect(status == 200, "exchange event handled and confirmed")

                print("\n7. The member leaves")
                gone = wechat.invalidate_user_card({**card, "invalid_reason": "member left"})
                expect(gone["body"]["user_card_state"] == "INVALID", "card invalidated")

                print("\n8. Refused requests carry the detail")
                try:
                    wechat.confirm({"user_card_code": "1", "card_id": CARD_ID, "brand_id": BRAND_ID,
                                    "openid": OPENID, "user_card_confirm_state": "CREATE_CARD_SUCCESS",
                                    "card_color": "yellow"})
                except cardbridge.ValidationError as e:
                    print(f"  {e.name}: field {e.field}")
                    expect(e.field == "confirm.card_color", "validation names the field")
                else:
                    expect(False, "an invalid card_color is refused")
            except (cardbridge.CardbridgeError, urllib.error.URLError, KeyError) as e:
                problems.append(repr(e))
                print(f"  error: {e!r}")
            finally:
                server.shutdown()
                server.server_close()

    print("\ndone" if not problems else f"\n{len(problems)} unexpected result(s): {problems}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
