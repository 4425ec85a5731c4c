"""Shared fixtures: repository paths, test keys, a running emulator, an
integration pointed at it, and a platform driver. Everything is loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cardbridge
from cardbridge.testing import Emulator, HttpRequest

REPO = Path(__file__).resolve().parents[3]
KEYS = REPO / "tests" / "fixtures" / "keys"
CLIENT_ID = "2022TEST_CLIENT"
NOTIFY = "/v2/pds/memberships/notifyCardRegistration"
REGISTER_DATE = "2026-11-23T18:00:00+08:00"
CARD_FIELDS: list[dict[str, Any]] = [
    {"fieldCode": "POINT", "fieldValue": "120"},
    {"fieldCode": "BALANCE", "fieldValue": {"value": 100, "currency": "SGD"}},
]


def key(name: str) -> str:
    return (KEYS / name).read_text()


def integration_config(base_url: str | None = None, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "merchant_private_key": key("test_merchant_private.pem"),
        "platform_public_key": key("test_platform_public.pem"),
        # Generous budget, short waits: faults are retried quickly.
        "connect_timeout_ms": 10000,
        "read_timeout_ms": 30000,
        "retry": {"max_attempts": 4, "base_delay_ms": 10, "max_delay_ms": 50, "deadline_ms": 60000},
    }
    if base_url is not None:
        config["base_url"] = base_url
    config.update(extra)
    return config


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """`cardbridge emulator` (test keys, client ID 2022TEST_CLIENT) in a subprocess."""
    with Emulator() as emu:
        yield emu


@pytest.fixture
def alipay(emulator: Emulator) -> Iterator[cardbridge.AlipayPlus]:
    with cardbridge.Store.memory() as store, cardbridge.AlipayPlus(
        integration_config(emulator.url), store
    ) as ap:
        yield ap


@pytest.fixture(scope="session")
def driver(emulator: Emulator) -> Emulator:
    """Mints signed platform → merchant requests: the same emulator."""
    return emulator


def send(alipay: cardbridge.AlipayPlus, request: HttpRequest) -> cardbridge.Response | cardbridge.Call:
    """Feeds a driver-made request to the integration as an HTTP server would."""
    return alipay.begin(request.method, request.target, request.headers, request.body)


def result_of(response: cardbridge.Response) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(response.body)["result"]
    return result
