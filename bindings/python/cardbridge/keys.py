"""RSA keys: load them once, derive the public key to register on a console."""

from __future__ import annotations

import ctypes
from typing import Any

from . import _bindings as b
from ._managed import Managed
from ._util import invoke, take_bytes, text


class PrivateKey(Managed[Any]):
    """An RSA private key (at least 2048 bits); PEM PKCS#8 or PKCS#1, or bare Base64 DER."""

    @classmethod
    def from_pem(cls, pem: str) -> PrivateKey:
        """Loads a key; `InvalidKeyError` when it cannot (the message never echoes key material)."""
        raw = text(pem, "pem")
        out = ctypes.POINTER(b.cardbridge_private_key)()
        invoke(b.cardbridge_private_key_from_pem, raw, len(raw), ctypes.byref(out))
        return cls(out)

    def public_key_pem(self) -> str:
        """The matching public key as PEM `PUBLIC KEY` text."""
        out = b.cardbridge_bytes()
        with self._borrow() as key:
            invoke(b.cardbridge_private_key_public_key_pem, key, ctypes.byref(out))
        return take_bytes(out).decode("utf-8")

    def _delete(self, handle: Any) -> None:
        b.cardbridge_private_key_free(handle)


class PublicKey(Managed[Any]):
    """An RSA public key (at least 2048 bits); PEM SPKI or PKCS#1, or bare Base64 DER."""

    @classmethod
    def from_pem(cls, pem: str) -> PublicKey:
        """Loads a key; `InvalidKeyError` when it cannot."""
        raw = text(pem, "pem")
        out = ctypes.POINTER(b.cardbridge_public_key)()
        invoke(b.cardbridge_public_key_from_pem, raw, len(raw), ctypes.byref(out))
        return cls(out)

    def _delete(self, handle: Any) -> None:
        b.cardbridge_public_key_free(handle)
