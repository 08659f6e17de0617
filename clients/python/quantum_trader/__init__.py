"""A typed client for quantum-trader's Redis Streams: publish signals, read fills,
rejections and position updates as dataclasses generated from docs/schemas.

    from quantum_trader import Bus
    bus = Bus()
    signal_id = bus.publish_trade_signal("BTCUSDT", "BUY", 0.85, "manual_test")
    print(bus.wait_for_result(signal_id))
"""

from __future__ import annotations

from typing import Any, Optional, Union

from ._common import DEFAULT_URL, GroupInfo, InvalidMessage, Outcome, StreamInfo
from ._runtime import Message
from .bus import Bus, Subscription
from .messages import *  # noqa: F401,F403  (every message and enum, listed in messages.__all__)
from .messages import SignalAction
from .messages import __all__ as _messages
from .topics import DLQ_SUFFIX, SERVICE_GROUPS, TOPIC_MESSAGES, Topic

__version__ = "0.1.0"

__all__ = [
    "Bus",
    "DEFAULT_URL",
    "DLQ_SUFFIX",
    "GroupInfo",
    "InvalidMessage",
    "Message",
    "Outcome",
    "SERVICE_GROUPS",
    "StreamInfo",
    "Subscription",
    "TOPIC_MESSAGES",
    "Topic",
    "default_bus",
    "publish_trade_signal",
    *_messages,
]

_default: Optional[Bus] = None


def default_bus() -> Bus:
    """The module's own Bus ($REDIS_URL and $QT_STREAM_PREFIX, else the local defaults), made on first use."""
    global _default
    if _default is None:
        _default = Bus()
    return _default


def publish_trade_signal(symbol: str, action: Union[SignalAction, str], confidence: float, source: str, **optional: Any) -> str:
    """Bus.publish_trade_signal on the default bus: publishes and returns the signal_id."""
    return default_bus().publish_trade_signal(symbol, action, confidence, source, **optional)
