"""Misuse from Python: closed handles, wrong types, finishing twice, object
lifetimes (§8.3)."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest

import cardbridge
from cardbridge import AlipayPlus, Call, Response
from cardbridge.testing import Emulator, sample_registration

from conftest import NOTIFY, integration_config, key, send


def new_call(alipay: AlipayPlus, driver: Emulator, request_id: str) -> Call:
    call = send(alipay, driver.request(NOTIFY, sample_registration(request_id)))
    assert isinstance(call, Call)
    return call


def test_use_after_close_raises_value_error(alipay: AlipayPlus, driver: Emulator) -> None:
    store = cardbridge.Store.memory()
    store.close()
    store.close()  # idempotent
    assert store.closed
    with pytest.raises(ValueError, match="closed"):
        store._ptr()
    with pytest.raises(ValueError, match="closed"):
        AlipayPlus(integration_config(), store)

    call = new_call(alipay, driver, "PY-MISUSE-1")
    call.close()
    with pytest.raises(ValueError, match="closed"):
        alipay.finish(call)
    with pytest.raises(ValueError, match="closed"):
        call.finish_unknown()
    # The copied request stays readable.
    assert call.request_id == "PY-MISUSE-1"


def test_closed_integration_refuses_calls(emulator: Emulator) -> None:
    with AlipayPlus(integration_config(emulator.url), cardbridge.Store.memory()) as ap:
        pass
    assert ap.closed
    with pytest.raises(ValueError, match="closed"):
        ap.issue_card({})
    with pytest.raises(ValueError, match="closed"):
        ap.begin("POST", NOTIFY, [], b"{}")
    with pytest.raises(ValueError, match="closed"):
        ap.purge_expired()


def test_response_data_outlives_close(alipay: AlipayPlus, driver: Emulator) -> None:
    call = new_call(alipay, driver, "PY-MISUSE-RESP")
    with call.finish() as response:
        body = response.body
    assert response.closed and response.body == body and response.status == 200
    assert response.header("Signature") is not None
    call.close()


def test_finishing_twice_raises_already_used(alipay: AlipayPlus, driver: Emulator) -> None:
    call = new_call(alipay, driver, "PY-TWICE-1")
    alipay.finish(call)
    with pytest.raises(cardbridge.AlreadyUsedError) as info:
        alipay.finish(call)
    assert info.value.code == 5 and info.value.field == "call"
    with pytest.raises(cardbridge.AlreadyUsedError):
        alipay.finish_unknown(call)
    call.close()


def test_wrong_argument_types_raise_type_error(alipay: AlipayPlus, driver: Emulator) -> None:
    with pytest.raises(TypeError, match="body"):
        alipay.begin("POST", NOTIFY, [], "text is not a raw body")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="method"):
        alipay.begin(b"POST", NOTIFY, [], b"{}")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="headers"):
        alipay.begin("POST", NOTIFY, ["Client-Id"], b"{}")
    with pytest.raises(TypeError, match="header names"):
        alipay.begin("POST", NOTIFY, [("Client-Id", 7)], b"{}")
    with pytest.raises(TypeError, match="now_ms"):
        alipay.begin("POST", NOTIFY, [], b"{}", now_ms="now")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="now_ms"):
        alipay.purge_expired(now_ms=True)
    with pytest.raises(TypeError, match="request"):
        alipay.issue_card(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="config"):
        AlipayPlus(3.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="store"):
        AlipayPlus(integration_config(), "memory")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Call"):
        alipay.finish("call")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="decision"):
        alipay.finish(new_call(alipay, driver, "PY-TYPES-1"), 12)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="path"):
        cardbridge.Store.sqlite(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="external_customer_id"):
        cardbridge.build_issue_card({}, 123, "2026-01-01T00:00:00Z", [])  # type: ignore[arg-type]


def test_invalid_utf8_in_text_input_is_refused(alipay: AlipayPlus) -> None:
    # Lone surrogates cannot be encoded: refused before reaching the library.
    with pytest.raises(UnicodeEncodeError):
        alipay.begin("POST", "/\udc80", [], b"{}")


def test_call_keeps_its_integration_alive(emulator: Emulator, driver: Emulator) -> None:
    ap = AlipayPlus(integration_config(emulator.url), cardbridge.Store.memory())
    ref = weakref.ref(ap)
    call = new_call(ap, driver, "PY-ALIVE-1")
    del ap
    gc.collect()
    assert ref() is not None, "the call holds its AlipayPlus"
    assert isinstance(call.finish(), Response)
    del call
    gc.collect()
    assert ref() is None, "both are released once unused"


def test_garbage_collected_handles_are_freed(monkeypatch: pytest.MonkeyPatch) -> None:
    # __del__ closes: each native handle is freed exactly once, as soon as its
    # last Python reference goes away, so short-lived objects never accumulate.
    import ctypes

    from cardbridge import _bindings as b

    freed: dict[str, list[int]] = {"store": [], "key": []}

    def counting(kind: str, original: Any) -> Any:
        def free(handle: Any) -> None:
            freed[kind].append(ctypes.cast(handle, ctypes.c_void_p).value or 0)
            original(handle)

        return free

    monkeypatch.setattr(b, "cardbridge_store_free", counting("store", b.cardbridge_store_free))
    monkeypatch.setattr(b, "cardbridge_public_key_free", counting("key", b.cardbridge_public_key_free))
    pem = key("test_merchant_public.pem")
    refs = []
    for i in range(200):
        store = cardbridge.Store.memory()
        store2 = store
        address = ctypes.cast(store._ptr(), ctypes.c_void_p).value
        refs.append(weakref.ref(store))
        del store
        assert len(freed["store"]) == i, "still referenced by store2: not freed yet"
        del store2
        assert freed["store"] == [*freed["store"][:i], address], f"store {i} freed at once, exactly once"
        k = cardbridge.PublicKey.from_pem(pem)
        assert not k.closed
        del k
        assert len(freed["key"]) == i + 1, f"key {i} freed at once"
    gc.collect()
    assert len(freed["store"]) == 200 and len(freed["key"]) == 200, "no double or missing free"
    assert all(ref() is None for ref in refs), "the Python objects are gone too"
    assert all(freed["store"]) and all(freed["key"]), "never freed a NULL handle"


def test_close_while_in_use_frees_after_the_call(emulator: Emulator) -> None:
    import ctypes

    from cardbridge import _bindings as b
    from cardbridge._util import invoke

    ap = AlipayPlus(integration_config(emulator.url), cardbridge.Store.memory())
    with ap._borrow() as handle:  # a call in progress on another thread, say
        ap.close()
        assert ap.closed
        with pytest.raises(ValueError, match="closed"):
            ap.purge_expired()
        # Not freed yet: the in-flight call may still use the handle.
        purged = ctypes.c_size_t(99)
        invoke(b.cardbridge_alipayplus_purge_expired, handle, 0, ctypes.byref(purged))
        assert purged.value == 0
        assert ap._handle is not None
    assert ap._handle is None, "freed when the last use ended"
