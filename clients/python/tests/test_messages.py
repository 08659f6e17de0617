"""The generated messages on their own: validation naming the field, JSON both ways."""

from __future__ import annotations

import json

import pytest

from quantum_trader import (
    Bus,
    CheckEntry,
    ExecutionResult,
    ExecutionStatus,
    OrderSide,
    PositionUpdate,
    RiskApprovedSignal,
    SignalAction,
    TradeSignal,
    TradeSignalInput,
)

SIGNAL = dict(schema_version=1, signal_id="s-1", symbol="BTCUSDT", action="BUY", confidence=0.85, source="test", ts=1)

FILL = {
    "schema_version": 1, "order_id": "PAPER-0123456789ab", "signal_id": "s-1", "symbol": "BTCUSDT", "side": "BUY",
    "quantity": 0.015, "reference_price": 65000, "fill_price": 65010.5, "slippage_pct": 0.0002, "fee_usd": 0.39,
    "fee_rate": 0.0004, "notional_usd": 975.16, "status": "FILLED", "signal_ts": 1, "ts": 2, "reduce_only": False,
    "origin": "signal",
}


def test_a_valid_signal_converts_its_enums_and_round_trips() -> None:
    signal = TradeSignal(**SIGNAL)  # type: ignore[arg-type]
    assert signal.action is SignalAction.BUY
    assert json.loads(signal.to_json()) == SIGNAL
    assert TradeSignal.from_json(signal.to_json()) == signal


@pytest.mark.parametrize(
    "field, value",
    [("confidence", 1.5), ("confidence", -0.1), ("confidence", "high"), ("symbol", "btc-usdt"), ("symbol", "BTCUSDT\n"),
     ("action", "BUYY"), ("source", ""), ("price", 0), ("metadata", {"nested": [1]})],
)
def test_a_bad_field_is_a_value_error_naming_it(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"invalid TradeSignal: {field}\b"):
        TradeSignal(**{**SIGNAL, field: value})  # type: ignore[arg-type]


def test_a_missing_field_is_named_on_decoding() -> None:
    with pytest.raises(ValueError, match="invalid ExecutionResult: order_id: is required"):
        ExecutionResult.from_dict({k: v for k, v in FILL.items() if k != "order_id"})


def test_incoming_json_decodes_to_typed_objects_and_ignores_unknown_keys() -> None:
    fill = ExecutionResult.from_json(json.dumps({**FILL, "a_field_added_later": 1}))
    assert fill.status is ExecutionStatus.FILLED and fill.side is OrderSide.BUY
    assert fill.reject_reason is None
    assert "a_field_added_later" not in fill.to_json()


def test_nested_objects_arrays_and_nullables() -> None:
    approved = {
        **SIGNAL, "intent": "OPEN", "side": "BUY", "quantity": 0.01, "notional_usd": 650, "reference_price": 65000,
        "kelly_optimal": 0.2, "kelly_applied": 0.05, "risk_amount_usd": 13, "reduce_only": False, "approved_ts": 3,
        "origin": "signal", "checks": [{"rule": "exposure", "passed": True, "value": 0.47, "limit": 0.5}], "sizing": None,
    }
    message = RiskApprovedSignal.from_dict(approved)
    assert message.checks == [CheckEntry(rule="exposure", passed=True, value=0.47, limit=0.5)]
    assert message.sizing is None and json.loads(message.to_json()).get("sizing") is None
    with pytest.raises(ValueError, match=r"checks\[0\]\.passed"):
        RiskApprovedSignal.from_dict({**approved, "checks": [{"rule": "x", "passed": "yes", "value": 1, "limit": 1}]})
    position = {
        "schema_version": 1, "symbol": "BTCUSDT", "side": "LONG", "quantity": 1, "avg_entry_price": 1, "mark_price": 1,
        "unrealized_pnl_usd": 0, "realized_pnl_usd": 0, "fees_usd": 0, "cause": "fill", "ts": 1,
        "portfolio": {"balance_usd": 1, "equity_usd": 1, "exposure_usd": 1, "exposure_pct": 1, "drawdown_pct": 0,
                      "open_positions": 1, "win_rate": 1.5, "closed_trades": 0},
    }
    with pytest.raises(ValueError, match=r"invalid PositionUpdate: portfolio\.win_rate: must be <= 1"):
        PositionUpdate.from_dict(position)


def test_a_producer_may_leave_out_id_time_and_version() -> None:
    minimal = TradeSignalInput.from_json('{"symbol":"BTCUSDT","action":"BUY","confidence":0.85,"source":"xgb"}')
    assert minimal.signal_id is None and minimal.ts is None


def test_publish_refuses_a_bad_signal_before_touching_redis() -> None:
    # Nothing listens on port 1: any attempt to reach Redis would be a ConnectionError.
    bus = Bus(url="redis://127.0.0.1:1", prefix="")
    with pytest.raises(ValueError, match="confidence"):
        bus.publish_trade_signal("BTCUSDT", "BUY", 1.5, "test")
    with pytest.raises(ValueError, match="symbol"):
        bus.publish_trade_signal("btc", "BUY", 0.5, "test")
    with pytest.raises(ValueError, match="action"):
        bus.publish_trade_signal("BTCUSDT", "BUYY", 0.5, "test")
    with pytest.raises(TypeError, match="stop_los"):
        bus.publish_trade_signal("BTCUSDT", "BUY", 0.5, "test", stop_los=1.0)
    with pytest.raises(ValueError, match="group"):
        bus.subscribe("trade.execution.res", "execution")  # a service's own group
