"""The asyncio API (quantum_trader.aio) against the real loop: the same behaviour."""

from __future__ import annotations

import asyncio

import pytest

from conftest import needs_loop
from quantum_trader import ExecutionResult, ExecutionStatus, PositionUpdate, Topic, TradeSignalInput
from quantum_trader.aio import Bus

pytestmark = needs_loop


def test_async_publish_fill_and_position_update(unique: str) -> None:
    async def scenario() -> None:
        async with Bus() as bus:
            signal_id = await bus.publish_trade_signal("SOLUSDT", "BUY", 0.85, "pytest-aio")
            fill = await bus.wait_for_result(signal_id, timeout=30)
            assert isinstance(fill, ExecutionResult) and fill.status is ExecutionStatus.FILLED, fill
            async with bus.subscribe(Topic.POSITION, f"apos-{unique}", idle_timeout=20) as updates:
                async for update in updates:
                    assert isinstance(update, PositionUpdate)
                    if update.order_id == fill.order_id:
                        assert update.symbol == "SOLUSDT" and update.quantity >= fill.quantity
                        break
                else:
                    raise AssertionError(f"no position update for {fill.order_id}")
            with pytest.raises(ValueError, match="confidence"):
                await bus.publish_trade_signal("SOLUSDT", "BUY", 2, "pytest-aio")

    asyncio.run(scenario())


def test_async_consumer_that_raises_gets_its_entry_again(unique: str) -> None:
    async def scenario() -> None:
        async with Bus() as bus:
            group = f"araiser-{unique}"
            signals = bus.subscribe(Topic.SIGNAL, group, "aworker", start="$", idle_timeout=10)
            async with signals:  # creates the group before the signal is published
                pass
            signal_id = await bus.publish_trade_signal("BNBUSDT", "HOLD", 0.5, "pytest-aio", signal_id=f"ahold-{unique}")
            with pytest.raises(RuntimeError):
                async for signal in signals:
                    assert isinstance(signal, TradeSignalInput) and signal.signal_id == signal_id
                    raise RuntimeError("model crashed")
            assert (await bus.redis.xpending(bus.stream(Topic.SIGNAL), group))["pending"] == 1
            async with signals:
                async for signal in signals:
                    assert isinstance(signal, TradeSignalInput) and signal.signal_id == signal_id
                    break
            assert (await bus.redis.xpending(bus.stream(Topic.SIGNAL), group))["pending"] == 0
            streams = {info.topic: info for info in await bus.streams()}
            assert group in {g.name for g in streams["trade.signal.v5"].groups}

    asyncio.run(scenario())
