"""Exceptions raised for failed native calls (ffi-conventions.md §8.5).

Every failure surfaces as a `CardbridgeError` subclass chosen by the result
code; the exception copies everything out of the native `cardbridge_error`
and frees it (it takes ownership).
"""

from __future__ import annotations

import ctypes
from typing import Any

from . import _bindings as b


class CardbridgeError(Exception):
    """A cardbridge call failed.

    Attributes:
        code: the stable result code (`CARDBRIDGE_RESULT_*`, e.g. 200).
        name: its constant name, e.g. `"CARDBRIDGE_RESULT_VALIDATION"`.
        message: the human-readable message (includes what the platform said).
        field: the field path for validation errors (e.g.
            `issueCard.externalCustomerId`) or the parameter name; else None.
        limit: the limit that was broken, as text (e.g. `"64"`); else None.
        remote_code, remote_message, remote_status, remote_detail: what the
            platform answered (Alipay+ `resultCode`, `resultMessage`,
            `resultStatus`; WeChat `detail`), None when not from an answer.
        http_status: the HTTP status of the platform's answer, None when none.
        outbox_id: for `RemoteUnknown`, the outbox id of the request left pending
            (what `resume` and `cardbridge outbox show` take); else None.
        attempts: for `RemoteUnknown`, the attempts that request has had; else 0.
        request_id: for a `RemoteUnknown` of `issueCard`, its Alipay+ requestId
            (call again with the same request); else None.
    """

    code: int
    name: str
    message: str
    field: str | None
    limit: str | None
    remote_code: str | None
    remote_message: str | None
    remote_status: str | None
    remote_detail: str | None
    http_status: int | None
    outbox_id: str | None
    attempts: int
    request_id: str | None

    def __init__(
        self,
        message: str,
        *,
        code: int = 0,
        name: str = "",
        field: str | None = None,
        limit: str | None = None,
        remote_code: str | None = None,
        remote_message: str | None = None,
        remote_status: str | None = None,
        remote_detail: str | None = None,
        http_status: int | None = None,
        outbox_id: str | None = None,
        attempts: int = 0,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.name = name
        self.message = message
        self.field = field
        self.limit = limit
        self.remote_code = remote_code
        self.remote_message = remote_message
        self.remote_status = remote_status
        self.remote_detail = remote_detail
        self.http_status = http_status
        self.outbox_id = outbox_id
        self.attempts = attempts
        self.request_id = request_id

    def __str__(self) -> str:
        return f"{self.name}: {self.message}" if self.name else self.message


class InvalidArgumentError(CardbridgeError, ValueError):
    """An argument the library refused (NULL, out of domain, not UTF-8): 1, 2, 3, 6."""


class PanicError(CardbridgeError):
    """The library caught an internal panic (4); the objects involved should be closed."""


class AlreadyUsedError(CardbridgeError):
    """An object was used after a consuming or final call, e.g. a call finished twice (5)."""


class InternalError(CardbridgeError):
    """An internal failure such as store I/O (7)."""


class ConfigError(CardbridgeError):
    """Configuration is incomplete or inconsistent (100)."""


class InvalidKeyError(ConfigError):
    """A key could not be parsed or is too weak (101)."""


class UnsupportedAlgorithmError(ConfigError):
    """An algorithm the library does not implement (102)."""


class ValidationError(CardbridgeError):
    """A payload field broke a documented rule (200); see `field` and `limit`."""


class InvalidJsonError(CardbridgeError):
    """A payload was not JSON or not of the expected shape (201)."""


class IdempotencyConflict(CardbridgeError):
    """The idempotency key (requestId) was already used with another payload (202)."""


class ClaimLost(CardbridgeError):
    """This call's claim expired and another delivery of the same key took it over
    and has not decided yet (203): nothing was stored; answer "retry later"."""


class CryptoError(CardbridgeError):
    """Base of the signature and encryption failures (300-399)."""


class SignatureError(CryptoError):
    """A signature was missing, malformed or did not verify (300)."""


class ClockSkewError(CryptoError):
    """A timestamp was outside the accepted window (301)."""


class UnknownKeySerialError(CryptoError):
    """No key is configured for the serial or key version presented (302)."""


class DecryptError(CryptoError):
    """Decryption failed (303)."""


class PlaintextTooLongError(CryptoError):
    """A plaintext is longer than the encryption scheme allows (304)."""


class TransportError(CardbridgeError):
    """Connection, DNS or TLS failure (400); base of the transport group."""


class CardbridgeTimeoutError(TransportError):
    """A connect or read timeout elapsed (401)."""


class HttpStatusError(TransportError):
    """The peer answered with an unexpected HTTP status (402)."""


class ProtocolError(TransportError):
    """The peer's answer broke the protocol (403)."""


class RemoteError(CardbridgeError):
    """Base of the platform outcomes (500-599)."""


class RemoteFailed(RemoteError):
    """The platform refused for good (Alipay+ `F`) (500); see `remote_code`, `remote_message`."""


class RemoteUnknown(RemoteError):
    """No definite outcome (Alipay+ `U`) (501): retry later with the same request."""


_BY_CODE: dict[int, type[CardbridgeError]] = {
    b.CARDBRIDGE_RESULT_NULL_PARAMETER: InvalidArgumentError,
    b.CARDBRIDGE_RESULT_INVALID_PARAMETER: InvalidArgumentError,
    b.CARDBRIDGE_RESULT_INSUFFICIENT_SIZE: InvalidArgumentError,
    b.CARDBRIDGE_RESULT_PANIC: PanicError,
    b.CARDBRIDGE_RESULT_ALREADY_USED: AlreadyUsedError,
    b.CARDBRIDGE_RESULT_INVALID_UTF8: InvalidArgumentError,
    b.CARDBRIDGE_RESULT_INTERNAL: InternalError,
    b.CARDBRIDGE_RESULT_INVALID_CONFIG: ConfigError,
    b.CARDBRIDGE_RESULT_INVALID_KEY: InvalidKeyError,
    b.CARDBRIDGE_RESULT_UNSUPPORTED_ALGORITHM: UnsupportedAlgorithmError,
    b.CARDBRIDGE_RESULT_VALIDATION: ValidationError,
    b.CARDBRIDGE_RESULT_INVALID_JSON: InvalidJsonError,
    b.CARDBRIDGE_RESULT_IDEMPOTENCY_CONFLICT: IdempotencyConflict,
    b.CARDBRIDGE_RESULT_CLAIM_LOST: ClaimLost,
    b.CARDBRIDGE_RESULT_SIGNATURE_INVALID: SignatureError,
    b.CARDBRIDGE_RESULT_CLOCK_SKEW: ClockSkewError,
    b.CARDBRIDGE_RESULT_UNKNOWN_KEY_SERIAL: UnknownKeySerialError,
    b.CARDBRIDGE_RESULT_DECRYPT_FAILED: DecryptError,
    b.CARDBRIDGE_RESULT_PLAINTEXT_TOO_LONG: PlaintextTooLongError,
    b.CARDBRIDGE_RESULT_TRANSPORT: TransportError,
    b.CARDBRIDGE_RESULT_TIMEOUT: CardbridgeTimeoutError,
    b.CARDBRIDGE_RESULT_HTTP_STATUS: HttpStatusError,
    b.CARDBRIDGE_RESULT_PROTOCOL: ProtocolError,
    b.CARDBRIDGE_RESULT_REMOTE_FAILED: RemoteFailed,
    b.CARDBRIDGE_RESULT_REMOTE_UNKNOWN: RemoteUnknown,
}


def exception_class(code: int) -> type[CardbridgeError]:
    """The exception class raised for a result code (CardbridgeError if unknown)."""
    return _BY_CODE.get(code, CardbridgeError)


def result_name(code: int) -> str:
    """The constant name of a result code, e.g. `CARDBRIDGE_RESULT_VALIDATION`."""
    raw = b.cardbridge_result_name(code)
    return raw.decode("utf-8") if raw is not None else ""


def _read_text(accessor: Any, err: Any) -> str:
    """Reads one `cardbridge_error_*` text accessor (caller buffer + `out_n`)."""
    size = ctypes.c_size_t(0)
    buf = ctypes.create_string_buffer(256)
    rc = accessor(err, buf, len(buf), ctypes.byref(size))
    if rc == b.CARDBRIDGE_RESULT_INSUFFICIENT_SIZE:
        buf = ctypes.create_string_buffer(size.value)
        rc = accessor(err, buf, len(buf), ctypes.byref(size))
    if rc != b.CARDBRIDGE_RESULT_OK:
        return ""
    return buf.raw[: size.value].decode("utf-8", "replace")


def from_result(code: int, err: Any) -> CardbridgeError:
    """Builds the exception for a failed call from its return code and the
    `cardbridge_error *` it wrote (possibly NULL), freeing the latter."""
    try:
        if not err:
            return exception_class(code)(result_name(code), code=code, name=result_name(code))

        def optional(text: str) -> str | None:
            return text or None

        status = b.cardbridge_error_http_status(err)
        actual = b.cardbridge_error_code(err)
        return exception_class(actual)(
            _read_text(b.cardbridge_error_message, err),
            code=actual,
            name=result_name(actual),
            field=optional(_read_text(b.cardbridge_error_field, err)),
            limit=optional(_read_text(b.cardbridge_error_limit, err)),
            remote_code=optional(_read_text(b.cardbridge_error_remote_code, err)),
            remote_message=optional(_read_text(b.cardbridge_error_remote_message, err)),
            remote_status=optional(_read_text(b.cardbridge_error_remote_status, err)),
            remote_detail=optional(_read_text(b.cardbridge_error_remote_detail, err)),
            http_status=status or None,
            outbox_id=optional(_read_text(b.cardbridge_error_outbox_id, err)),
            attempts=int(b.cardbridge_error_attempts(err)),
            request_id=optional(_read_text(b.cardbridge_error_request_id, err)),
        )
    finally:
        b.cardbridge_error_free(err)
