"""Every operation of the API, every parameter and body field, given the inputs that once gave
500s: dates of year 1 and 9999 (with offsets that overflow), NaN and infinities as raw JSON tokens
and as query texts, numbers beyond a float or an int's digits, negative and huge values, over-long
strings. Each answer is a 4xx, never a 5xx, and the API serves on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.harness import Harness

DATES = [
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "2026-06-01T00:00:00",
]
NUMBERS = ["NaN", "Infinity", "-Infinity", "1e309", "-1e309", "1e300", "-1", "1" + "0" * 5000]
TEXTS = ["x" * 5000, "NaN", "\u0000", ""]
PATH_VALUES = {
    "device": "pv-h01",
    "name": "p_kw",
    "meter": "m-h01",
    "customer": "h01",
    "building": "bldg1",
    "source": "sensor-chp1",
    "code": "x",
    "load": "load-h01",
    "premises": "office",
}
QUERY_VALUES = {
    "start": "2026-06-01T00:00:00Z",
    "end": "2026-06-02T00:00:00Z",
    "period": "2026-06",
    "month": "2026-06",
    "day": "2026-05-31",
}
BODIES: dict[str, dict[str, Any]] = {
    "POST /api/v1/users": {"name": "fuzzed", "role": "auditor"},
    "POST /api/v1/commands": {"device": "bess-community", "name": "p_set_kw", "value": 0.0},
    "POST /api/v1/commands/authorisations": {
        "device": "bess-community",
        "name": "p_set_kw",
        "value": 0.0,
    },
    "POST /api/v1/devices/authorisations": {"address": "127.0.0.1:15030:1"},
    "POST /api/v1/meters/{meter}/edits": {
        "channel": "import",
        "interval_start": "2026-06-01T04:00:00Z",
        "value_kwh": 0.1,
        "reason": "fuzzed",
    },
    "PUT /api/v1/trading/{customer}": {
        "windows": [{"purchase": 0.1, "sale": 0.2, "from_hour": 0, "to_hour": 24}],
        "incentive_per_kwh": 0.0,
    },
    "POST /api/v1/sim/utility": {"available": True},
    "POST /api/v1/bas/{premises}/commands": {
        "equipment": "ahu-1",
        "point": "space_temp_setpoint_c",
        "value": 21.0,
    },
    "POST /api/v1/sim/loads/{load}/step": {"kw": 0.0},
    "POST /api/v1/sim/fault": {"line": "Line R6-R7"},
}
FORM = {"grant_type": "password", "username": "nobody", "password": "not the password"}


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with Harness(tmp_path_factory.mktemp("bad-inputs")) as harness:
        yield harness


def _bad_values(schema: dict[str, Any]) -> list[str]:
    kind = schema.get("type") or next(
        (s.get("type") for s in schema.get("anyOf", []) if s.get("type") != "null"), "string"
    )
    if schema.get("format") == "date-time":
        return DATES + TEXTS[:1]
    if kind in ("integer", "number"):
        return NUMBERS + TEXTS[:1]
    return TEXTS + NUMBERS[:1]


def _field_variants(body: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """The body as raw JSON with one field at a time replaced by a bad token."""
    for key, value in body.items():
        if isinstance(value, list):
            for inner in value[0]:
                for token in NUMBERS:
                    item = {**value[0], inner: "@@"}
                    text = json.dumps({**body, key: [item]}).replace('"@@"', token)
                    yield f"{key}[0].{inner}={token[:12]}", text
            continue
        tokens = NUMBERS + [json.dumps(t) for t in TEXTS] + [json.dumps(d) for d in DATES]
        for token in [*tokens, "null", "[]", "{}"]:
            yield f"{key}={token[:12]}", json.dumps({**body, key: "@@"}).replace('"@@"', token)


def _path(
    path: str, params: list[dict[str, Any]], bad: dict[str, Any] | None = None, value: str = ""
) -> str:
    names = {p["name"]: PATH_VALUES.get(p["name"], "x") for p in params if p["in"] == "path"}
    if bad is not None:
        names[bad["name"]] = value.replace("\x00", "%00")
    return path.format(**names)


@pytest.mark.slow
def test_no_input_of_any_route_gives_a_server_error(h: Harness) -> None:
    doc = httpx.get(f"{h.url}/openapi.json").json()
    failures: list[str] = []
    tried = 0
    with h.client("operator") as op:
        for path, operations in doc["paths"].items():
            for method, operation in operations.items():
                label = f"{method.upper()} {path}"
                params = operation.get("parameters", [])
                query = {
                    p["name"]: QUERY_VALUES[p["name"]]
                    for p in params
                    if p["in"] == "query" and p["name"] in QUERY_VALUES
                }
                body = BODIES.get(label)
                if "application/json" in operation.get("requestBody", {}).get("content", {}):
                    assert body is not None, f"give {label} a valid body in BODIES"
                cases: list[tuple[str, str, dict[str, str], str | None]] = []
                for p in params:
                    for value in _bad_values(p.get("schema", {})):
                        what = f"{p['name']}={value[:12]!r}"
                        if p["in"] == "path":
                            cases.append((what, _path(path, params, p, value), query, None))
                        else:
                            cases.append(
                                (what, _path(path, params), {**query, p["name"]: value}, None)
                            )
                if body is not None:
                    for what, text in _field_variants(body):
                        cases.append((what, _path(path, params), query, text))
                for what, url, q, text in cases:
                    if label == "POST /api/v1/auth/token":
                        continue
                    if text is None and body is not None:
                        text = json.dumps(body)
                    headers = {"content-type": "application/json"} if text else {}
                    try:
                        r = op.request(method, url, params=q, content=text, headers=headers)
                    except httpx.HTTPError as err:
                        failures.append(f"{label} {what}: no answer ({err})")
                        continue
                    tried += 1
                    if r.status_code >= 500:
                        failures.append(f"{label} {what}: {r.status_code} {r.text[:200]}")
        for field in FORM:
            for value in TEXTS + NUMBERS:
                r = op.post("/api/v1/auth/token", data={**FORM, field: value})
                tried += 1
                if r.status_code >= 500:
                    failures.append(f"login {field}={value[:12]!r}: {r.status_code}")
        assert op.get("/api/v1/live").status_code == 200
    assert tried > 400
    assert not failures, "\n".join(failures)
