"""``GET /api/v1/market/settled-days``: the newest revision of each prosumer's local days settled
on the validated series, a prosumer seeing only their own."""

from datetime import UTC, datetime
from pathlib import Path

from openmeg.market.settlement import p2p_day_settlements
from tests.api.harness import Harness

PERIOD = {"start": "2026-05-31T22:00Z", "end": "2026-06-01T22:00Z"}  # local 1 June (+02:00)


def _row(customer: str, revision: int, money: int, difference: int) -> dict[str, object]:
    return {
        "site": "demo",
        "day": "2026-06-01",
        "customer": customer,
        "revision": revision,
        "position_kwh": 48.0,
        "local_kwh": 28.5,
        "utility_kwh": 19.5,
        "local_cents": 570,
        "utility_cents": money - 570,
        "money_cents": money,
        "difference_cents": difference,
        "basis": "import:1;export:1",
        "settled_at": datetime(2026, 6, 2, 6, tzinfo=UTC),
    }


def test_settled_days_newest_revision_own_only(tmp_path: Path) -> None:
    with Harness(tmp_path) as h:
        with h.store.engine.begin() as conn:
            conn.execute(
                p2p_day_settlements.insert(),
                [_row("h01", 1, 1155, 1155), _row("h01", 2, 1167, 12), _row("h05", 1, 900, 900)],
            )
        with h.client("prosumer") as pro:
            mine = pro.get("/api/v1/market/settled-days", params=PERIOD)
        with h.client("operator") as op:
            every = op.get("/api/v1/market/settled-days", params=PERIOD)
            before = op.get(
                "/api/v1/market/settled-days",
                params={"start": "2026-05-30T22:00Z", "end": "2026-05-31T22:00Z"},  # 31 May
            )
    assert mine.status_code == 200, mine.text
    assert mine.json() == [
        {
            "day": "2026-06-01",
            "customer": "h01",
            "revision": 2,
            "position_kwh": 48.0,
            "local_kwh": 28.5,
            "utility_kwh": 19.5,
            "money": 11.67,
            "difference": 0.12,
        }
    ]
    assert [(r["customer"], r["revision"]) for r in every.json()] == [("h01", 2), ("h05", 1)]
    assert before.json() == []
