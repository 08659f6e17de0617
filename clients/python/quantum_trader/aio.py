"""The bus on redis.asyncio: the same API as quantum_trader.Bus, awaited.

    async with Bus() as bus:
        signal_id = await bus.publish_trade_signal("BTCUSDT", "BUY", 0.85, "manual_test")
        async with bus.subscribe("trade.execution.res", "my-model") as fills:
            async for fill in fills:
                ...
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, AsyncIterator, Dict, List, Optional, Type, Union

import redis
import redis.asyncio

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

__all__ = ["Bus", "Subscription"]


class Bus:
    """One asyncio connection to the loop's streams; see quantum_trader.Bus."""

    def __init__(self, url: Optional[str] = None, prefix: Optional[str] = None) -> None:
        self.url = resolve_url(url)
        self.prefix = resolve_prefix(prefix)
        self.redis: Any = redis.asyncio.Redis.from_url(self.url, decode_responses=True)

    async def close(self) -> None:
        closer = getattr(self.redis, "aclose", None) or self.redis.close  # aclose from redis-py 5
        await closer()

    async def __aenter__(self) -> Bus:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def stream(self, topic: TopicName) -> str:
        return self.prefix + topic_name(topic)

    async def publish(self, topic: TopicName, message: Message) -> str:
        fields = encode(topic_name(topic), message)
        return str(await self.redis.xadd(self.stream(topic), fields))

    async def publish_trade_signal(
        self, symbol: str, action: Union[SignalAction, str], confidence: float, source: str, **optional: Any
    ) -> str:
        """Publishes a trade signal and returns its signal_id; ValueError naming a bad field."""
        signal = build_signal(symbol, action, confidence, source, optional)
        await self.publish(Topic.SIGNAL, signal)
        return signal.signal_id

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
        """As quantum_trader.Bus.subscribe; iterate with ``async for``."""
        check_group(group, consumer)
        check_on_invalid(on_invalid)
        return Subscription(self, topic_name(topic), group, consumer, start, count, block_ms, idle_timeout, on_invalid)

    async def tail(
        self, topic: TopicName, *, since: str = "$", block_ms: int = 2000, idle_timeout: Optional[float] = None
    ) -> AsyncIterator[Message]:
        """As quantum_trader.Bus.tail."""
        name = topic_name(topic)
        key = self.stream(name)
        after = await self._last_id(key) if since == "$" else since
        deadline = None if idle_timeout is None else time.monotonic() + idle_timeout
        while True:
            block = block_for(block_ms, deadline)  # None: the idle time is up, one last look without waiting
            entries = entries_of(await self.redis.xread({key: after}, count=100, block=block))
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

    async def latest(self, topic: TopicName, count: int = 10) -> List[Message]:
        name = topic_name(topic)
        out: List[Message] = []
        newest = await self.redis.xrevrange(self.stream(name), count=count)
        for entry_id, fields in reversed(entries_of([(name, newest)])):
            try:
                out.append(decode(name, entry_id, fields))
            except InvalidMessage as error:
                log.warning("skipping invalid entry: %s", error)
        return out

    async def wait_for_result(self, signal_id: str, timeout: float = 30.0) -> Outcome:
        """As quantum_trader.Bus.wait_for_result."""
        keys = {topic: self.stream(topic) for topic in OUTCOME_TOPICS}
        after = {topic: await self._last_id(key) for topic, key in keys.items()}
        for topic, key in keys.items():
            for entry_id, fields in entries_of([(topic, await self.redis.xrevrange(key, count=1000))]):
                if signal_id_of(fields) == signal_id:
                    return self._outcome(topic, entry_id, fields)
        deadline = time.monotonic() + timeout
        while True:
            block = block_for(1000, deadline)
            if block is None:
                raise TimeoutError(f"no execution result or rejection for {signal_id} within {timeout:g} s")
            reply = await self.redis.xread({keys[t]: after[t] for t in OUTCOME_TOPICS}, count=100, block=block) or []
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

    async def _last_id(self, key: str) -> str:
        newest = await self.redis.xrevrange(key, count=1)
        return str(newest[0][0]) if newest else "0-0"

    async def streams(self) -> List[StreamInfo]:
        out: List[StreamInfo] = []
        for topic in report_topics():
            key = self.prefix + topic
            try:
                length = int(await self.redis.xlen(key))
                groups = [group_info(raw) for raw in await self.redis.xinfo_groups(key)]
            except redis.ResponseError as error:
                if not is_no_such_key(error):
                    raise
                length, groups = 0, []
            out.append(StreamInfo(topic=topic, length=length, groups=groups))
        return out

    async def _ensure_group(self, key: str, group: str, start: str) -> None:
        try:
            await self.redis.xgroup_create(key, group, id=start, mkstream=True)
        except redis.ResponseError as error:
            if not is_busygroup(error):
                raise


class Subscription:
    """Iterates (``async for``) typed messages of one topic for one group and consumer."""

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
        self._start = start
        self._count = count
        self._block_ms = block_ms
        self._idle_timeout = idle_timeout
        self._on_invalid = on_invalid
        self._buffer: List[Entry] = []
        self._cursor = ReadCursor()
        self._unacked: Optional[str] = None
        self._deadline: Optional[float] = None
        self._prepared = False

    def __aiter__(self) -> Subscription:
        # A new loop: what the last one did not finish stays pending and is read again first.
        self._unacked = None
        self._buffer = []
        self._cursor = ReadCursor()
        self._deadline = None if self._idle_timeout is None else time.monotonic() + self._idle_timeout
        return self

    async def __anext__(self) -> Message:
        await self.ack()
        if not self._prepared:
            await self.bus._ensure_group(self._key, self.group, self._start)
            self._prepared = True
        while True:
            if not self._buffer and not await self._fill():
                raise StopAsyncIteration
            entry_id, fields = self._buffer.pop(0)
            if fields is None:
                await self.bus.redis.xack(self._key, self.group, entry_id)
                continue
            try:
                message = decode(self.topic, entry_id, fields)
            except InvalidMessage as error:
                if self._on_invalid == "raise":
                    raise
                await self._dead_letter(entry_id, fields, error)
                continue
            self._unacked = entry_id
            return message

    async def ack(self) -> None:
        if self._unacked is not None:
            await self.bus.redis.xack(self._key, self.group, self._unacked)
            self._unacked = None

    async def __aenter__(self) -> Subscription:
        if not self._prepared:
            await self.bus._ensure_group(self._key, self.group, self._start)
            self._prepared = True
        return self

    async def __aexit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        if exc_type is None:
            await self.ack()

    async def _fill(self) -> bool:
        if self._deadline is None and self._idle_timeout is not None:
            self._deadline = time.monotonic() + self._idle_timeout
        while not self._buffer:
            own = self._cursor.own_pending
            # Pending entries are read without waiting; so is the last look once the idle time is up.
            block = None if own else block_for(self._block_ms, self._deadline)
            last_look = not own and block is None
            reply = await self.bus.redis.xreadgroup(
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

    async def _dead_letter(self, entry_id: str, fields: Optional[Dict[str, str]], error: InvalidMessage) -> None:
        log.warning("moving invalid entry to %s: %s", dlq_name(self._key), error)
        async with self.bus.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(dlq_name(self._key), dead_letter(fields, error.error, entry_id, self.group))
            pipe.xack(self._key, self.group, entry_id)
            await pipe.execute()
