"""The bus over Redis Streams, synchronous (redis-py). The same API on redis.asyncio is
quantum_trader.aio."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, Dict, Iterator, List, Optional, Type, Union

import redis

from ._common import (
    OUTCOME_TOPICS,
    Entry,
    InvalidMessage,
    Outcome,
    ReadCursor,
    StreamInfo,
    TopicName,
    block_for,
    build_signal,
    check_group,
    check_on_invalid,
    dead_letter,
    decode,
    dlq_name,
    encode,
    entries_of,
    group_info,
    is_busygroup,
    is_no_such_key,
    log,
    report_topics,
    resolve_prefix,
    resolve_url,
    signal_id_of,
    topic_name,
)
from ._runtime import Message
from .messages import ExecutionResult, RiskRejection, SignalAction
from .topics import Topic


class Bus:
    """One connection to the loop's streams.

    ``url`` defaults to $REDIS_URL, else redis://127.0.0.1:6379; ``prefix`` (the
    services' ``stream_prefix``) to $QT_STREAM_PREFIX, else none: the same settings the
    services read, so a model started next to them finds their streams.
    """

    def __init__(self, url: Optional[str] = None, prefix: Optional[str] = None) -> None:
        self.url = resolve_url(url)
        self.prefix = resolve_prefix(prefix)
        self.redis: Any = redis.Redis.from_url(self.url, decode_responses=True)

    def close(self) -> None:
        self.redis.close()

    def __enter__(self) -> Bus:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def stream(self, topic: TopicName) -> str:
        """The Redis key of a topic (the prefix applied)."""
        return self.prefix + topic_name(topic)

    # -- publishing ---------------------------------------------------------------------

    def publish(self, topic: TopicName, message: Message) -> str:
        """Appends a message to a topic; returns the entry id. A message that is not a
        valid payload of the topic is refused (ValueError) before anything is sent."""
        fields = encode(topic_name(topic), message)
        return str(self.redis.xadd(self.stream(topic), fields))

    def publish_trade_signal(
        self, symbol: str, action: Union[SignalAction, str], confidence: float, source: str, **optional: Any
    ) -> str:
        """Publishes a trade signal to trade.signal.v5 and returns its signal_id.

        ``optional``: any optional TradeSignal field (``signal_id`` to make a retried
        publish harmless, ``price``, ``stop_loss``, ``take_profit``, ``metadata``, ...).
        A bad field raises ValueError naming it, before anything reaches Redis.
        """
        signal = build_signal(symbol, action, confidence, source, optional)
        self.publish(Topic.SIGNAL, signal)
        return signal.signal_id

    # -- reading ------------------------------------------------------------------------

    def subscribe(
        self,
        topic: TopicName,
        group: str,
        consumer: str = "python",
        *,
        start: str = "0",
        count: int = 16,
        block_ms: int = 2000,
        idle_timeout: Optional[float] = None,
        on_invalid: str = "dlq",
    ) -> Subscription:
        """Typed messages of ``topic`` read with your own consumer group (created when
        missing, at ``start``: "0" = the whole stream, "$" = only new entries).

        Each message is acknowledged once your loop body finished with it: when the next
        one is requested, or when a ``with`` block ends without an exception. A body that
        raises leaves its entry pending, and the next iteration (a new ``for`` over the
        subscription, or a new ``subscribe`` with the same group and consumer) gets it
        again first. ``idle_timeout`` (seconds) ends the iteration when nothing new came
        for that long; None waits for ever.

        An entry whose payload is invalid goes, like in the services, to ``<topic>.dlq``
        with the error and is acknowledged (a warning is logged); ``on_invalid="raise"``
        raises InvalidMessage instead and leaves it pending.
        """
        check_group(group, consumer)
        check_on_invalid(on_invalid)
        return Subscription(self, topic_name(topic), group, consumer, start, count, block_ms, idle_timeout, on_invalid)

    def tail(
        self, topic: TopicName, *, since: str = "$", block_ms: int = 2000, idle_timeout: Optional[float] = None
    ) -> Iterator[Message]:
        """Typed messages of ``topic`` as they arrive, without a consumer group (nothing is
        acknowledged; the services are not affected). ``since``: "$" = from now, "0" =
        the whole stream, or an entry id. Invalid entries are logged and skipped."""
        name = topic_name(topic)
        key = self.stream(name)
        after = self._last_id(key) if since == "$" else since
        deadline = None if idle_timeout is None else time.monotonic() + idle_timeout
        while True:
            block = block_for(block_ms, deadline)  # None: the idle time is up, one last look without waiting
            entries = entries_of(self.redis.xread({key: after}, count=100, block=block))
            if entries and idle_timeout is not None:
                deadline = time.monotonic() + idle_timeout
            elif block is None:
                return
            for entry_id, fields in entries:
                after = entry_id
                try:
                    message = decode(name, entry_id, fields)
                except InvalidMessage as error:
                    log.warning("skipping invalid entry: %s", error)
                    continue
                yield message

    def latest(self, topic: TopicName, count: int = 10) -> List[Message]:
        """The newest ``count`` valid messages of ``topic``, oldest first."""
        name = topic_name(topic)
        out: List[Message] = []
        for entry_id, fields in reversed(entries_of([(name, self.redis.xrevrange(self.stream(name), count=count))])):
            try:
                out.append(decode(name, entry_id, fields))
            except InvalidMessage as error:
                log.warning("skipping invalid entry: %s", error)
        return out

    def wait_for_result(self, signal_id: str, timeout: float = 30.0) -> Outcome:
        """The outcome of a published signal: its ExecutionResult (FILLED, or REJECTED by
        execution), or the RiskRejection when the risk gate refused it. TimeoutError when
        neither appears within ``timeout`` seconds (a HOLD, for example, has neither)."""
        keys = {topic: self.stream(topic) for topic in OUTCOME_TOPICS}
        # Note where each stream ends, then look back, then wait from there: nothing slips between.
        after = {topic: self._last_id(key) for topic, key in keys.items()}
        for topic, key in keys.items():
            for entry_id, fields in entries_of([(topic, self.redis.xrevrange(key, count=1000))]):
                if signal_id_of(fields) == signal_id:
                    return self._outcome(topic, entry_id, fields)
        deadline = time.monotonic() + timeout
        while True:
            block = block_for(1000, deadline)
            if block is None:
                raise TimeoutError(f"no execution result or rejection for {signal_id} within {timeout:g} s")
            reply = self.redis.xread({keys[t]: after[t] for t in OUTCOME_TOPICS}, count=100, block=block) or []
            for stream, entries in reply:
                topic = next(t for t, k in keys.items() if k == stream)
                for entry_id, fields in entries_of([(stream, entries)]):
                    after[topic] = entry_id
                    if signal_id_of(fields) == signal_id:
                        return self._outcome(topic, entry_id, fields)

    def _outcome(self, topic: str, entry_id: str, fields: Optional[Dict[str, str]]) -> Outcome:
        message = decode(topic, entry_id, fields)
        assert isinstance(message, (ExecutionResult, RiskRejection))
        return message

    def _last_id(self, key: str) -> str:
        newest = self.redis.xrevrange(key, count=1)
        return str(newest[0][0]) if newest else "0-0"

    def streams(self) -> List[StreamInfo]:
        """Length, consumer groups, pending and lag of every topic and dead-letter topic."""
        out: List[StreamInfo] = []
        for topic in report_topics():
            key = self.prefix + topic
            try:
                length = int(self.redis.xlen(key))
                groups = [group_info(raw) for raw in self.redis.xinfo_groups(key)]
            except redis.ResponseError as error:
                if not is_no_such_key(error):
                    raise
                length, groups = 0, []
            out.append(StreamInfo(topic=topic, length=length, groups=groups))
        return out

    # -- group plumbing (used by Subscription) -----------------------------------------

    def _ensure_group(self, key: str, group: str, start: str) -> None:
        try:
            self.redis.xgroup_create(key, group, id=start, mkstream=True)
        except redis.ResponseError as error:
            if not is_busygroup(error):
                raise


class Subscription:
    """Iterates typed messages of one topic for one group and consumer; see Bus.subscribe."""

    def __init__(
        self,
        bus: Bus,
        topic: str,
        group: str,
        consumer: str,
        start: str,
        count: int,
        block_ms: int,
        idle_timeout: Optional[float],
        on_invalid: str,
    ) -> None:
        self.bus = bus
        self.topic = topic
        self.group = group
        self.consumer = consumer
        self._key = bus.stream(topic)
        self._count = count
        self._block_ms = block_ms
        self._idle_timeout = idle_timeout
        self._on_invalid = on_invalid
        self._buffer: List[Entry] = []
        self._cursor = ReadCursor()
        self._unacked: Optional[str] = None
        self._deadline: Optional[float] = None
        bus._ensure_group(self._key, group, start)

    def __iter__(self) -> Subscription:
        # A new loop: what the last one did not finish stays pending and is read again first.
        self._unacked = None
        self._buffer = []
        self._cursor = ReadCursor()
        self._deadline = None if self._idle_timeout is None else time.monotonic() + self._idle_timeout
        return self

    def __next__(self) -> Message:
        self.ack()  # the caller asked for the next one, so the previous one was handled
        while True:
            if not self._buffer and not self._fill():
                raise StopIteration
            entry_id, fields = self._buffer.pop(0)
            if fields is None:
                # Trimmed from the stream while it was pending: nothing left to hand out.
                self.bus.redis.xack(self._key, self.group, entry_id)
                continue
            try:
                message = decode(self.topic, entry_id, fields)
            except InvalidMessage as error:
                if self._on_invalid == "raise":
                    raise
                self._dead_letter(entry_id, fields, error)
                continue
            self._unacked = entry_id
            return message

    def ack(self) -> None:
        """Acknowledges the message last handed out (done for you when the next one is requested)."""
        if self._unacked is not None:
            self.bus.redis.xack(self._key, self.group, self._unacked)
            self._unacked = None

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        if exc_type is None:
            self.ack()  # left the loop normally (break): the last message was handled

    def _fill(self) -> bool:
        if self._deadline is None and self._idle_timeout is not None:
            self._deadline = time.monotonic() + self._idle_timeout
        while not self._buffer:
            own = self._cursor.own_pending
            # Pending entries are read without waiting; so is the last look once the idle time is up.
            block = None if own else block_for(self._block_ms, self._deadline)
            last_look = not own and block is None
            reply = self.bus.redis.xreadgroup(
                self.group, self.consumer, {self._key: self._cursor.read_id}, count=self._count, block=block
            )
            entries = entries_of(reply)
            self._cursor.advance(entries)
            if entries and self._idle_timeout is not None:
                self._deadline = time.monotonic() + self._idle_timeout
            elif last_look:
                return False
            self._buffer = entries
        return True

    def _dead_letter(self, entry_id: str, fields: Optional[Dict[str, str]], error: InvalidMessage) -> None:
        log.warning("moving invalid entry to %s: %s", dlq_name(self._key), error)
        pipe = self.bus.redis.pipeline(transaction=True)
        pipe.xadd(dlq_name(self._key), dead_letter(fields, error.error, entry_id, self.group))
        pipe.xack(self._key, self.group, entry_id)
        pipe.execute()

