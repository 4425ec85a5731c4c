#!/usr/bin/env python3
"""A POS vendor's member sync with the Alipay+ Mini Program Platform, end to end.

What a real deployment does, with the platform played by the `cardbridge
emulator` binary (started in a subprocess by `cardbridge.testing`) and test keys:

1. a web endpoint (here http.server) receives the platform's signed
   `notifyCardRegistration` calls and answers them with cardbridge's
   `handle_http` helper: signatures, validation, idempotency (a duplicate gets
   the very same answer) and the signed reply are the library's job; the POS
   only decides (`decide` stores the new member);
2. the POS then issues the membership card (`issueCard`) back to the
   platform; the library signs it, records it in its SQLite outbox and
   retries ambiguous outcomes with the same body.

Run: python3 examples/python/pos_member_sync.py [--keys DIR] [--db FILE]
(with the cardbridge package installed, or CARDBRIDGE_LIBRARY_PATH set; the
`cardbridge` binary from the wheel, next to the library, or CARDBRIDGE_BIN).
Exits non-zero if anything unexpected happens, so it doubles as a smoke test.
"""

from __future__ import annotations

import argparse
import datetime as dt
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
from cardbridge import AlipayPlus, Call, Store, handle_http
from cardbridge.testing import Emulator, HttpRequest, sample_registration

CLIENT_ID = "2022TEST_CLIENT"
NOTIFY = "/v2/pds/memberships/notifyCardRegistration"
DEFAULT_KEYS = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "keys"

# The POS's own member database (a dict here; a table in real life).
members: dict[str, dict[str, Any]] = {}
members_lock = threading.Lock()


def decide(call: Call) -> dict[str, Any]:
    """The POS's business decision for a verified, validated platform call."""
    if call.api is cardbridge.Api.NOTIFY_CARD_REGISTRATION:
        fields = {f["fieldCode"]: f["fieldValue"] for f in call.request["registrationFields"]}
        with members_lock:
            members[call.request["customerId"]] = {"registration": call.request, "fields": fields}
        print(f"  POS: new member {fields.get('USER_NAME')!r} (customerId {call.request['customerId']})")
        return {}  # S SUCCESS
    # Other membership APIs (card detail, assets) would be answered here.
    return {"result": {"resultStatus": "F", "resultCode": "PROCESS_FAIL", "resultMessage": "not supported"}}


def make_endpoint(alipay: AlipayPlus) -> type[BaseHTTPRequestHandler]:
    class Endpoint(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            # The three lines any web framework needs:
            status, headers, answer = handle_http(alipay, "POST", self.path, self.headers, body, decide=decide)
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the output readable

    return Endpoint


def post(base: str, request: HttpRequest) -> tuple[int, bytes]:
    """Delivers a platform request to our endpoint over real HTTP."""
    skip = {"host", "content-length"}
    headers = {n: v for n, v in request.headers if n.lower() not in skip}
    http_request = urllib.request.Request(base + request.target, data=request.body, headers=headers, method="POST")
    with urllib.request.urlopen(http_request, timeout=30) as response:
        return response.status, response.read()


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
        db = args.db or Path(tmp) / "pos.db"
        with Emulator(
            platform_private_key=key("test_platform_private.pem"),
            merchant_public_key=key("test_merchant_public.pem"),
            client_id=CLIENT_ID,
        ) as platform, \
                Store.sqlite(db) as store, \
                AlipayPlus(
                    {
                        "client_id": CLIENT_ID,
                        "merchant_private_key": key("test_merchant_private.pem"),
                        "platform_public_key": key("test_platform_public.pem"),
                        "base_url": platform.url,
                        "retry": {"max_attempts": 5, "base_delay_ms": 50, "max_delay_ms": 500, "deadline_ms": 30000},
                    },
                    store,
                ) as alipay:
            driver = platform  # the emulator also mints the platform's signed calls
            print(f"platform emulator at {platform.url}; store {db}")

            server = ThreadingHTTPServer(("127.0.0.1", 0), make_endpoint(alipay))
            threading.Thread(target=server.serve_forever, daemon=True).start()
            endpoint = f"http://127.0.0.1:{server.server_address[1]}"
            print(f"POS endpoint at {endpoint}")
            try:
                print("\n1. The platform notifies a new card registration")
                registration = driver.request(NOTIFY, sample_registration("POS-REG-0001"))
                status, first = post(endpoint, registration)
                print(f"  answer {status}: {first.decode()}")
                expect(status == 200 and json.loads(first)["result"]["resultStatus"] == "S", "registration accepted")

                print("\n2. The platform retries the same notification")
                status, again = post(endpoint, registration)
                expect(again == first, "duplicate answered with the identical bytes, decide not asked again")
                expect(len(members) == 1, "one member stored")

                print("\n3. A forged notification (body changed after signing)")
                forged = driver.request(NOTIFY, sample_registration("POS-REG-0002"), tamper="bad-signature")
                status, refused = post(endpoint, forged)
                expect(json.loads(refused)["result"]["resultCode"] == "ACCESS_DENIED", "forged call refused")
                expect(len(members) == 1, "forged call never reached the POS")

                print("\n4. The POS issues the membership card")
                member = next(iter(members.values()))
                request = alipay.build_issue_card(
                    member["registration"],
                    external_customer_id="POS-M-0001",
                    register_date=dt.datetime.now(dt.timezone.utc).astimezone(),
                    card_fields=[
                        {"fieldCode": "POINT", "fieldValue": "120"},
                        {"fieldCode": "BALANCE", "fieldValue": {"value": 2500, "currency": "SGD"}},
                    ],
                )
                platform.push_fault("unknown")  # the platform answers "U" once: the library retries
                card = alipay.issue_card(request)
                print(f"  card issued: cardNo {card['cardNo']} after {platform.hits('POS-REG-0001')} attempts")
                expect(bool(card.get("cardNo")), "card number received")
                expect(platform.cards_issued() == 1, "exactly one card on the platform")

                print("\n5. Refused requests carry the detail")
                try:
                    alipay.build_issue_card(member["registration"], "x" * 65, "2026-11-23T18:00:00+08:00", [])
                except cardbridge.ValidationError as e:
                    print(f"  {e.name}: field {e.field}, limit {e.limit}")
                    expect(e.field == "issueCard.externalCustomerId", "validation names the field")
            except (cardbridge.CardbridgeError, urllib.error.URLError) as e:
                problems.append(repr(e))
                print(f"  error: {e!r}")
            finally:
                server.shutdown()
                server.server_close()
            print(f"\nmetrics: {alipay.metrics()}")

    print("\ndone" if not problems else f"\n{len(problems)} unexpected result(s): {problems}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
