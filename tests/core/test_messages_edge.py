"""The bus's messages at the edge: every model refuses NaN, infinities, huge numbers, negatives
where none can be, over-long text and malformed ids, from JSON on the wire and from a message
built without validation alike, each with the field and the rule it broke; and takes exactly the
values it should. The edge counts refusals, logs the first of each kind, alarms once."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from openmeg.core.bus import InProcessBus
from openmeg.core.clock import SimClock
from openmeg.core.edge import REFUSED_CODE, Edge, Refused, reason_of
from openmeg.core.messages import (
    AlarmMessage,
    CommandResult,
    DeviceAdded,
    IntervalReading,
    MarketPrices,
    MeterReadings,
    ModeChange,
    PeakDemand,
    PointUpdate,
    PriceChange,
    PriceSignal,
    TradingAccounts,
    decode,
    encode,
    revalidate,
)
from openmeg.core.points import Quality

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
TS = "2026-06-01T12:00:00Z"
S = "demo"

GOOD: dict[str, dict[str, Any]] = {
    "point": {
        "type": "point",
        "site": S,
        "device": "pv1",
        "name": "p_kw",
        "value": 3.5,
        "unit": "kW",
        "ts": TS,
    },
    "alarm": {
        "type": "alarm",
        "site": S,
        "source": "pv1",
        "code": "temperature_c_high",
        "text": "hot",
        "active": True,
        "ts": TS,
    },
    "mode": {"type": "mode", "site": S, "mode": "island", "ts": TS},
    "command_result": {
        "type": "command_result",
        "site": S,
        "device": "pcc",
        "name": "switch_command",
        "value": 1.0,
        "accepted": True,
        "ts": TS,
    },
    "device_added": {
        "type": "device_added",
        "site": S,
        "address": "127.0.0.1:502:1",
        "ok": True,
        "device": "pv9",
        "models": [1, 103],
        "points": ["p_kw"],
        "ts": TS,
    },
    "readings": {
        "type": "readings",
        "site": S,
        "meter": "m-h01",
        "channel": "import",
        "readings": [{"interval_start": TS, "value_kwh": 0.25}],
    },
    "price": {
        "type": "price",
        "site": S,
        "customer": "h01",
        "ts": TS,
        "buy_per_kwh": 0.3,
        "sell_per_kwh": 0.08,
        "tariff": "tou",
        "period": "peak",
    },
    "peak": {
        "type": "peak",
        "site": S,
        "owner": "h01",
        "building": "b1",
        "month": "2026-06",
        "peak_kw": 12.0,
        "hour_start": TS,
    },
    "market_prices": {
        "type": "market_prices",
        "site": S,
        "ts": TS,
        "changes": [{"effective_from": TS, "buy": 0.2, "sell": 0.1}],
    },
    "trading_accounts": {
        "type": "trading_accounts",
        "site": S,
        "customer": "h01",
        "ts": TS,
        "since": TS,
        "purchases": 1.5,
        "sales": 0.5,
        "incentives": 0.1,
        "net": -0.9,
    },
}

# (message type, path to a number, may it be negative)
NUMBERS = [
    ("point", ("value",), True),
    ("command_result", ("value",), True),
    ("readings", ("readings", 0, "value_kwh"), False),
    ("price", ("buy_per_kwh",), True),
    ("price", ("sell_per_kwh",), True),
    ("peak", ("peak_kw",), False),
    ("market_prices", ("changes", 0, "buy"), True),
    ("market_prices", ("changes", 0, "sell"), True),
    ("trading_accounts", ("purchases",), True),
    ("trading_accounts", ("net",), True),
]
# (message type, field holding an id or text)
STRINGS = [
    ("point", "site"),
    ("point", "device"),
    ("point", "name"),
    ("point", "unit"),
    ("alarm", "source"),
    ("alarm", "code"),
    ("alarm", "text"),
    ("mode", "site"),
    ("command_result", "reason"),
    ("device_added", "device"),
    ("readings", "meter"),
    ("price", "customer"),
    ("price", "tariff"),
    ("peak", "owner"),
    ("peak", "building"),
    ("market_prices", "site"),
    ("trading_accounts", "customer"),
]
IDS = [
    (t, f)
    for t, f in STRINGS
    if f in {"site", "device", "name", "source", "code", "meter"} and t != "device_added"
]  # (a device not added has the empty id)


def _with(kind: str, path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    doc = json.loads(json.dumps(GOOD[kind]))
    at: Any = doc
    for step in path[:-1]:
        at = at[step]
    at[path[-1]] = value
    return doc


def _raw(doc: dict[str, Any], literal: str) -> str:
    """JSON with the marker string replaced by a literal JSON cannot otherwise hold (NaN)."""
    return json.dumps(doc).replace('"@@"', literal)


def _refused(data: str) -> str:
    with pytest.raises(ValidationError) as err:
        decode(data)
    return reason_of(err.value)[1]


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_every_model_takes_its_good_message_exactly(kind: str) -> None:
    msg = decode(json.dumps(GOOD[kind]))
    assert msg.type == kind
    sent = json.loads(encode(msg))
    assert {k: sent[k] for k in GOOD[kind]} == GOOD[kind]  # every value as it was given
    assert revalidate(msg) == msg == decode(encode(msg))


@pytest.mark.parametrize(("kind", "path", "negative_ok"), NUMBERS)
@pytest.mark.parametrize(
    ("literal", "says"),
    [
        ("NaN", "finite number"),
        ("Infinity", "finite number"),
        ("-Infinity", "finite number"),
        ("1e400", "finite number"),  # JSON's way to an infinity
        ("1e300", "less than or equal"),  # finite, but no reading is that large
        ("-1e300", "greater than or equal"),
    ],
)
def test_non_finite_and_huge_numbers_are_refused_by_every_model(
    kind: str, path: tuple[str | int, ...], negative_ok: bool, literal: str, says: str
) -> None:
    reason = _refused(_raw(_with(kind, path, "@@"), literal))
    assert reason.startswith(".".join(str(p) for p in path) + ":"), reason
    assert says in reason


@pytest.mark.parametrize(("kind", "path", "negative_ok"), NUMBERS)
def test_negatives_are_refused_where_none_can_be(
    kind: str, path: tuple[str | int, ...], negative_ok: bool
) -> None:
    doc = _with(kind, path, -0.5)
    if negative_ok:
        assert decode(json.dumps(doc)).type == kind
    else:
        assert "greater than or equal to 0" in _refused(json.dumps(doc))


def test_prices_beyond_any_market_are_refused() -> None:
    assert "less than or equal to 1000" in _refused(
        json.dumps(_with("price", ("buy_per_kwh",), 1000.5))
    )
    assert decode(json.dumps(_with("price", ("buy_per_kwh",), 1000.0))).type == "price"


@pytest.mark.parametrize(("kind", "field"), STRINGS)
def test_over_long_strings_are_refused(kind: str, field: str) -> None:
    longest = 500 if field in {"text", "reason"} else 64
    fits = "a" * longest
    assert decode(json.dumps(_with(kind, (field,), fits))).type == kind
    assert "at most" in _refused(json.dumps(_with(kind, (field,), fits + "a")))


@pytest.mark.parametrize(("kind", "field"), IDS)
@pytest.mark.parametrize("bad", ["", "a/b", "a+b", "#", "<script>", "a b", "-lead"])
def test_ids_hold_only_letters_digits_and_dot_dash_underscore(
    kind: str, field: str, bad: str
) -> None:
    reason = _refused(json.dumps(_with(kind, (field,), bad)))
    assert reason.startswith(f"{field}:"), reason


def test_a_good_point_needs_a_value_an_invalid_one_travels_as_null() -> None:
    assert "quality good needs a value" in _refused(json.dumps(_with("point", ("value",), None)))
    doc = _with("point", ("value",), None) | {"quality": "invalid"}
    msg = decode(json.dumps(doc))
    assert isinstance(msg, PointUpdate) and msg.value is None
    assert json.loads(encode(msg))["value"] is None
    point = msg.to_point()
    assert point.value != point.value and point.quality is Quality.INVALID  # NaN inside
    assert PointUpdate.of(point).value is None  # and null again on the bus


def test_lists_are_bounded() -> None:
    many = [{"interval_start": TS, "value_kwh": 0.1}] * 5001
    assert "at most 5000" in _refused(json.dumps(_with("readings", ("readings",), many)))
    changes = [{"effective_from": TS, "buy": 0.1, "sell": 0.1}] * 10001
    assert "at most 10000" in _refused(json.dumps(_with("market_prices", ("changes",), changes)))


def test_the_month_of_a_peak_is_a_month() -> None:
    for bad in ("2026-13", "2026-6", "June"):
        assert _refused(json.dumps(_with("peak", ("month",), bad))).startswith("month:")


BUILT_BAD = [
    PointUpdate.model_construct(
        site=S, device="pv1", name="p_kw", value=float("nan"), unit="kW", ts=T0, v=1, type="point"
    ),
    AlarmMessage.model_construct(
        site=S,
        source="pv1",
        code="x",
        text="x" * 501,
        active=True,
        ts=T0,
        severity="warning",
        v=1,
        type="alarm",
    ),
    MeterReadings.model_construct(
        site=S,
        meter="m-h01",
        channel="import",
        readings=[IntervalReading.model_construct(interval_start=T0, value_kwh=float("inf"))],
        v=1,
        type="readings",
    ),
    MarketPrices.model_construct(
        site=S,
        ts=T0,
        changes=[PriceChange.model_construct(effective_from=T0, buy=float("nan"), sell=0.1)],
        v=1,
        type="market_prices",
    ),
    PriceSignal.model_construct(
        site=S,
        customer="h01",
        ts=T0,
        buy_per_kwh=float("-inf"),
        sell_per_kwh=0.1,
        tariff="t",
        period="p",
        v=1,
        type="price",
    ),
    PeakDemand.model_construct(
        site=S,
        owner="h01",
        building="b1",
        month="2026-06",
        peak_kw=-1.0,
        hour_start=T0,
        v=1,
        type="peak",
    ),
    TradingAccounts.model_construct(
        site=S,
        customer="h01",
        ts=T0,
        since=T0,
        purchases=float("nan"),
        sales=0.0,
        incentives=0.0,
        net=0.0,
        v=1,
        type="trading_accounts",
    ),
    ModeChange.model_construct(site="a/b", mode="island", ts=T0, v=1, type="mode"),
    CommandResult.model_construct(
        site=S,
        device="pcc",
        name="switch_command",
        value=float("inf"),
        accepted=True,
        reason="",
        ts=T0,
        v=1,
        type="command_result",
    ),
    DeviceAdded.model_construct(
        site=S,
        address="x",
        ok=True,
        device="",
        models=[-1],
        points=[],
        reason="",
        ts=T0,
        v=1,
        type="device_added",
    ),
]


@pytest.mark.parametrize("msg", BUILT_BAD, ids=lambda m: m.type)
def test_a_message_built_without_validation_is_refused_when_checked_again(msg: Any) -> None:
    with pytest.raises(ValidationError):
        revalidate(msg)


async def test_the_edge_counts_every_refusal_logs_once_per_kind_and_alarms_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = InProcessBus()
    alarms = await bus.subscribe(f"meg/{S}/operation/alarms/#")
    edge = Edge(S, bus, SimClock(T0))
    gate = edge.gate("price_book")
    bad = BUILT_BAD[3]
    caplog.set_level(logging.WARNING, logger="openmeg.core.edge")

    async def refuse_all(msg: Any) -> None:
        raise Refused("too_dear", "beyond the bound")

    async def broken(msg: Any) -> None:
        raise ZeroDivisionError("oops")

    good = MarketPrices(site=S, ts=T0, changes=[PriceChange(effective_from=T0, buy=0.2, sell=0.1)])
    for _ in range(50):
        assert not await gate.handle("meg/demo/market/prices", bad, refuse_all)
        assert not await gate.handle("meg/demo/market/prices", good, refuse_all)
    assert not await gate.handle("meg/demo/market/prices", good, broken)
    taken: list[Any] = []

    async def take(msg: Any) -> None:
        taken.append(msg)

    assert await gate.handle("meg/demo/market/prices", good, take)
    assert taken == [good]
    assert edge.counts == {
        ("price_book", "changes.0.buy:finite_number"): 50,
        ("price_book", "too_dear"): 50,
        ("price_book", "handler_failed"): 1,
    }
    assert edge.total == gate.refused == 101
    logged = [r for r in caplog.records if r.name == "openmeg.core.edge"]
    assert len(logged) == 4  # one per kind, and the handler's failure with its traceback
    assert "ZeroDivisionError: oops" in edge.last["price_book"]
    _, alarm = alarms.get_nowait()
    assert isinstance(alarm, AlarmMessage)
    assert (alarm.source, alarm.code, alarm.active) == ("price_book", REFUSED_CODE, True)
    assert alarm.text.startswith("refused a message on meg/demo/market/prices: changes.0.buy:")
    assert alarms.pending() == 0  # once per service, however many refusals follow
