"""What the sync and the asyncio bus share: names, decoding, dead letters, stream reports.
Everything here is free of I/O, so both buses behave the same by construction."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple, Type, Union

from ._runtime import Message
from .messages import ExecutionResult, RiskRejection, SignalAction, TradeSignal
from .topics import DLQ_SUFFIX, PAYLOAD_FIELD, SCHEMA_VERSION, SERVICE_GROUPS, TOPIC_MESSAGES, Topic

log = logging.getLogger("quantum_trader")

DEFAULT_URL = "redis://127.0.0.1:6379"

#: What `subscribe` does with an entry whose payload fails validation.
ON_INVALID = ("dlq", "raise")

TopicName = Union[Topic, str]


class InvalidMessage(ValueError):
    """A stream entry whose payload is not a valid message of its topic."""

    def __init__(self, topic: str, entry_id: str, error: str) -> None:
        super().__init__(f"{topic} entry {entry_id}: {error}")
        self.topic = topic
        self.entry_id = entry_id
        self.error = error


def resolve_url(url: Optional[str]) -> str:
    """The given URL, else $REDIS_URL (the services' own setting), else the local default."""
    return url if url is not None else os.environ.get("REDIS_URL") or DEFAULT_URL


def resolve_prefix(prefix: Optional[str]) -> str:
    """The given prefix, else $QT_STREAM_PREFIX (the services' own setting), else none."""
    return prefix if prefix is not None else os.environ.get("QT_STREAM_PREFIX", "")


def topic_name(topic: TopicName) -> str:
    name = topic.value if isinstance(topic, Topic) else topic
    if name not in TOPIC_MESSAGES:
        raise ValueError(f"unknown topic {name!r}; one of {', '.join(sorted(TOPIC_MESSAGES))}")
    return name


def message_class(topic: str) -> Type[Message]:
    return TOPIC_MESSAGES[topic_name(topic)]


def check_group(group: str, consumer: str) -> None:
    if group in SERVICE_GROUPS:
        raise ValueError(f"group: {group!r} belongs to a service; reading with it would take entries from that service")
    if not group:
        raise ValueError("group: must not be empty")
    if not consumer:
        raise ValueError("consumer: must not be empty")


def check_on_invalid(on_invalid: str) -> None:
    if on_invalid not in ON_INVALID:
        raise ValueError(f"on_invalid: must be one of {', '.join(ON_INVALID)}, got {on_invalid!r}")


def now_ms() -> int:
    return int(time.time() * 1000)


def build_signal(
    symbol: str, action: Union[SignalAction, str], confidence: float, source: str, optional: Mapping[str, Any]
) -> TradeSignal:
    """A complete TradeSignal (id, time and version filled in), validated: ValueError naming the field."""
    ts = optional.get("ts")
    ts = now_ms() if ts is None else ts
    signal_id = optional.get("signal_id") or f"sig-{ts}-{uuid.uuid4().hex[:8]}"
    extra = {key: value for key, value in optional.items() if key not in ("ts", "signal_id") and value is not None}
    known = {f.name for f in TradeSignal._FIELDS}
    unknown = sorted(set(extra) - known)
    if unknown:
        raise TypeError(f"publish_trade_signal() got unexpected keyword argument(s): {', '.join(unknown)}")
    return TradeSignal(
        schema_version=extra.pop("schema_version", SCHEMA_VERSION),
        signal_id=signal_id,
        symbol=symbol,
        action=action,  # type: ignore[arg-type]  # a str is converted (and checked) by the dataclass
        confidence=confidence,
        source=source,
        ts=ts,
        **extra,
    )


def encode(topic: str, message: Message) -> Dict[str, str]:
    """The entry's fields; the message must be a valid payload of `topic` (checked here, before Redis)."""
    cls = message_class(topic)
    payload = message.to_dict()
    if not isinstance(message, cls):
        cls.from_dict(payload)  # a TradeSignal is a valid trade.signal.v5 payload; anything else is refused here
    return {PAYLOAD_FIELD: message.to_json()}


def decode(topic: str, entry_id: str, fields: Optional[Mapping[str, str]]) -> Message:
    """The typed payload of one entry; InvalidMessage saying what is wrong."""
    if not fields or PAYLOAD_FIELD not in fields:
        raise InvalidMessage(topic, entry_id, f'missing "{PAYLOAD_FIELD}" field')
    try:
        return message_class(topic).from_json(fields[PAYLOAD_FIELD])
    except ValueError as error:
        raise InvalidMessage(topic, entry_id, str(error)) from None


def dead_letter(fields: Optional[Mapping[str, str]], error: str, entry_id: str, group: str) -> Dict[str, str]:
    """The dead-letter entry, with the same fields the loop's consumers write (docs/wire-format.md)."""
    return {
        **(fields or {}),
        "dlq_error": error,
        "dlq_source_id": entry_id,
        "dlq_group": group,
        "dlq_attempts": "1",
        "dlq_ts": str(now_ms()),
    }


def dlq_name(stream: str) -> str:
    return stream + DLQ_SUFFIX


def is_busygroup(error: Exception) -> bool:
    return str(error).startswith("BUSYGROUP")


def is_no_such_key(error: Exception) -> bool:
    return "no such key" in str(error).lower()


Entry = Tuple[str, Optional[Dict[str, str]]]


def entries_of(reply: Any) -> List[Entry]:
    """The entries of an XREADGROUP/XREAD reply on one stream (fields None when the entry was trimmed)."""
    if not reply:
        return []
    out: List[Entry] = []
    for _stream, entries in reply:
        for entry_id, fields in entries:
            out.append((str(entry_id), dict(fields) if fields else None))
    return out


class ReadCursor:
    """Where a group read continues: first this consumer's own pending entries (id "0"
    onwards, so a crashed or failed run resumes with what it had not acknowledged), then
    new entries (">")."""

    def __init__(self) -> None:
        self.own_pending = True
        self.after = "0"

    @property
    def read_id(self) -> str:
        return self.after if self.own_pending else ">"

    def advance(self, entries: List[Entry]) -> None:
        if not self.own_pending:
            return
        if entries:
            self.after = entries[-1][0]
        else:
            self.own_pending = False


def block_for(block_ms: int, deadline: Optional[float]) -> Optional[int]:
    """The BLOCK argument of the next read; None when the idle deadline has passed."""
    if deadline is None:
        return block_ms
    left = int((deadline - time.monotonic()) * 1000)
    return None if left <= 0 else max(1, min(block_ms, left))


def signal_id_of(fields: Optional[Mapping[str, str]]) -> Optional[str]:
    """The signal_id in an entry's payload without validating the rest (a cheap filter)."""
    try:
        payload = json.loads((fields or {}).get(PAYLOAD_FIELD, ""))
    except ValueError:
        return None
    value = payload.get("signal_id") if isinstance(payload, dict) else None
    return value if isinstance(value, str) else None


Outcome = Union[ExecutionResult, RiskRejection]
#: Where the outcome of a signal appears: its fill (or execution rejection), or the risk gate's rejection.
OUTCOME_TOPICS = (Topic.EXECUTION.value, Topic.REJECTED.value)


@dataclass(frozen=True)
class GroupInfo:
    name: str
    consumers: int
    pending: int
    #: Entries not yet delivered to the group; None when Redis cannot tell (after a trim or XDEL).
    lag: Optional[int]


@dataclass(frozen=True)
class StreamInfo:
    topic: str
    length: int
    groups: List[GroupInfo] = field(default_factory=list)


def group_info(raw: Mapping[str, Any]) -> GroupInfo:
    lag = raw.get("lag")
    return GroupInfo(
        name=str(raw.get("name")),
        consumers=int(raw.get("consumers") or 0),
        pending=int(raw.get("pending") or 0),
        lag=None if lag is None else int(lag),
    )


def report_topics() -> List[str]:
    """Every topic of the loop followed by its dead-letter topic (as `quantum streams` lists them)."""
    return [name for topic in Topic for name in (topic.value, topic.value + DLQ_SUFFIX)]
