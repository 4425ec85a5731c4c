"""cardbridge: membership-card integration for the Alipay+ Mini Program
Platform and WeChat Pay brand member cards, over the cardbridge native
library (ctypes, no runtime dependency).

Quick start (see README):

    from cardbridge import AlipayPlus, Store, handle_http
    alipay = AlipayPlus(config, Store.sqlite("cardbridge.db"))
    status, headers, body = handle_http(alipay, method, target, headers, raw_body, decide=my_decide)

    from cardbridge import WechatPay, handle_wechat_callback
    wechat = WechatPay(wechat_config, Store.sqlite("cardbridge.db"))
    status, headers, body = handle_wechat_callback(wechat, method, target, headers, raw_body, handle=on_event)
    wechat.confirm({"user_card_code": ..., "card_id": ..., ...})
"""

from . import _bindings
from ._version import __version__
from .alipayplus import (
    AlipayPlus,
    Answer,
    Api,
    Call,
    Decision,
    Direction,
    Response,
    Store,
    build_issue_card,
    handle_http,
    validate,
)
from .errors import (
    AlreadyUsedError,
    CardbridgeError,
    CardbridgeTimeoutError,
    ClockSkewError,
    ConfigError,
    CryptoError,
    DecryptError,
    HttpStatusError,
    IdempotencyConflict,
    ClaimLost,
    InternalError,
    InvalidArgumentError,
    InvalidJsonError,
    InvalidKeyError,
    PanicError,
    PlaintextTooLongError,
    ProtocolError,
    RemoteError,
    RemoteFailed,
    RemoteUnknown,
    SignatureError,
    TransportError,
    UnknownKeySerialError,
    UnsupportedAlgorithmError,
    ValidationError,
)
from ._options import CancelToken
from .keys import PrivateKey, PublicKey
from .wechatpay import Event, WechatPay, exchange_confirm_input, handle_wechat_callback, validate_wechat
from .models import ConfirmInput, PointsSyncInput, UserCard, user_card

from . import _log

_log.install()  # native log events → logging.getLogger("cardbridge.*")


def version() -> str:
    """The native library's name and version, e.g. `cardbridge/0.1.0`."""
    raw = _bindings.cardbridge_version()
    return raw.decode("utf-8") if raw is not None else ""


__all__ = [
    "AlipayPlus",
    "AlreadyUsedError",
    "Answer",
    "Api",
    "Call",
    "CancelToken",
    "CardbridgeError",
    "CardbridgeTimeoutError",
    "ClockSkewError",
    "ConfigError",
    "CryptoError",
    "Decision",
    "DecryptError",
    "Direction",
    "Event",
    "HttpStatusError",
    "IdempotencyConflict",
    "ClaimLost",
    "InternalError",
    "InvalidArgumentError",
    "InvalidJsonError",
    "InvalidKeyError",
    "PanicError",
    "PlaintextTooLongError",
    "PrivateKey",
    "ProtocolError",
    "PublicKey",
    "RemoteError",
    "RemoteFailed",
    "RemoteUnknown",
    "Response",
    "SignatureError",
    "Store",
    "TransportError",
    "UnknownKeySerialError",
    "UnsupportedAlgorithmError",
    "ValidationError",
    "WechatPay",
    "__version__",
    "build_issue_card",
    "handle_http",
    "handle_wechat_callback",
    "validate",
    "validate_wechat",
    "exchange_confirm_input",
    "version",
    "ConfirmInput",
    "PointsSyncInput",
    "UserCard",
    "user_card",
]
