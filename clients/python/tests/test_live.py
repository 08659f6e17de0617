"""The sync API against the real loop (risk, execution and monitor on Redis)."""

from __future__ import annotations

import time

import pytest

import quantum_trader
from conftest import needs_loop
from quantum_trader import (
    Bus,
    ExecutionResult,
    ExecutionStatus,
    PortfolioSummary,
    PositionSide,
    PositionUpdate,
    PriceTick,
    TickSource,
    Topic,
    TradeSignalInput,
)

pytestmark = needs_loop


def position_update_of(bus: Bus, group: str, order_id: str) -> PositionUpdate:
    with bus.subscribe(Topic.POSITION, group, idle_timeout=20) as updates:
        for update in updates:
            assert isinstance(update, PositionUpdate)
            if update.order_id == order_id:
                return update
    raise AssertionError(f"no position update for {order_id}")


def test_a_published_signal_comes_back_as_a_typed_fill_and_position_update(bus: Bus, unique: str) -> None:
    signal_id = bus.publish_trade_signal("ETHUSDT", "BUY", 0.85, "pytest", signal_id=f"py-{unique}", stop_loss=3000.0)
    assert signal_id == f"py-{unique}"

    fill = bus.wait_for_result(signal_id, timeout=30)
    assert isinstance(fill, ExecutionResult), fill
    assert fill.status is ExecutionStatus.FILLED and fill.symbol == "ETHUSDT" and fill.quantity > 0

    update = position_update_of(bus, f"pos-{unique}", fill.order_id)
    assert update.side is PositionSide.LONG and update.quantity >= fill.quantity
    assert isinstance(update.portfolio, PortfolioSummary) and update.portfolio.open_positions >= 1

    # The same fill, read with a consumer group of our own, is the same typed object.
    with bus.subscribe(Topic.EXECUTION, f"fills-{unique}", idle_timeout=10) as fills:
        assert fill in list(fills)


def test_a_bad_signal_is_refused_client_side_naming_the_field(bus: Bus) -> None:
    before = bus.redis.xlen(bus.stream(Topic.SIGNAL))
    with pytest.raises(ValueError, match="confidence"):
        bus.publish_trade_signal("BTCUSDT", "BUY", 1.2, "pytest")
    with pytest.raises(ValueError, match="symbol"):
        bus.publish_trade_signal("BTC/USDT", "BUY", 0.8, "pytest")
    with pytest.raises(ValueError, match="action"):
        bus.publish_trade_signal("BTCUSDT", "LONG", 0.8, "pytest")
    assert bus.redis.xlen(bus.stream(Topic.SIGNAL)) == before


def test_a_consumer_that_raises_leaves_its_entry_pending_and_gets_it_again(bus: Bus, unique: str) -> None:
    group = f"raiser-{unique}"
    signals = bus.subscribe(Topic.SIGNAL, group, "worker-1", start="$", idle_timeout=10)
    # A HOLD: the risk gate takes no action on it, so this test trades nothing. Published with
    # the module-level function, on the default bus (REDIS_URL, QT_STREAM_PREFIX).
    signal_id = quantum_trader.publish_trade_signal("BNBUSDT", "HOLD", 0.5, "pytest", signal_id=f"hold-{unique}")

    with pytest.raises(RuntimeError, match="model crashed"):
        for signal in signals:
            assert isinstance(signal, TradeSignalInput) and signal.signal_id == signal_id
            raise RuntimeError("model crashed")
    assert bus.redis.xpending(bus.stream(Topic.SIGNAL), group)["pending"] == 1

    # Iterating again starts with this consumer's own pending entries: the same signal.
    with signals:
        for signal in signals:
            assert isinstance(signal, TradeSignalInput) and signal.signal_id == signal_id
            break
    assert bus.redis.xpending(bus.stream(Topic.SIGNAL), group)["pending"] == 0

    # Subscribing again with the same group is fine (no BUSYGROUP) and finds nothing left.
    assert list(bus.subscribe(Topic.SIGNAL, group, "worker-1", idle_timeout=0.5)) == []


def test_an_invalid_entry_goes_to_the_dead_letter_topic_and_the_loop_carries_on(bus: Bus, unique: str) -> None:
    group = f"dlq-{unique}"
    ticks = bus.subscribe(Topic.TICK, group, start="$", idle_timeout=10)
    key = bus.stream(Topic.TICK)
    # A tick with a bad price, then a good one (XRPUSDT: no other test trades it).
    bad_id = bus.redis.xadd(key, {"payload": '{"schema_version":1,"symbol":"XRPUSDT","price":-1,"ts":1,"source":"manual"}'})
    good = PriceTick(schema_version=1, symbol="XRPUSDT", price=0.6, ts=int(time.time() * 1000), source=TickSource.MANUAL)
    bus.publish(Topic.TICK, good)
    assert next(iter(ticks)) == good
    dead = [fields for _id, fields in bus.redis.xrange(key + ".dlq") if fields.get("dlq_group") == group]
    assert dead and dead[0]["dlq_source_id"] == bad_id and "price" in dead[0]["dlq_error"]


def test_tail_and_streams(bus: Bus, unique: str) -> None:
    fills = [m for m in bus.tail(Topic.EXECUTION, since="0", idle_timeout=1)]
    assert fills and all(isinstance(m, ExecutionResult) for m in fills)
    assert bus.latest(Topic.EXECUTION, 1) == fills[-1:]

    group = f"report-{unique}"
    bus.subscribe(Topic.EXECUTION, group)  # creates the group at 0: every fill is still to be read
    report = {info.topic: info for info in bus.streams()}
    execution = report["trade.execution.res"]
    assert execution.length >= len(fills)
    mine = next(g for g in execution.groups if g.name == group)
    assert mine.pending == 0 and mine.lag == execution.length
    assert "execution" in {g.name for g in report["trade.signal.safe"].groups}
    assert report["trade.signal.v5.dlq"].length >= 0
