"""Interop: the served BAS read and written by a BACnet stack openmeg did not write, bacnet-js
(npm ``@bacnet-js/client``, a TypeScript stack), run by Node.js as its own process.

``scripts/system-deps.sh`` (``make test``) installs it from the committed package-lock.json.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from openmeg.core.site import load_site
from openmeg.protocols.bacnet import BacnetServer

BAS = load_site("demo").bas[0]  # bas-office
PEER = Path(__file__).parent / "bacnet_js"

# ASHRAE 135 numbers the peer reports: error classes and codes, engineering units
PROPERTY, OBJECT = 2, 1
VALUE_OUT_OF_RANGE, WRITE_ACCESS_DENIED, UNKNOWN_OBJECT = 37, 40, 31
DEGREES_CELSIUS, KILOWATTS = 62, 48


class Plant:
    """A test double of the plant behind the BAS."""

    def __init__(self) -> None:
        self.values = {f"{e.id}.{p.name}": 0.0 for e, p, _ in BAS.objects()}
        self.values.update(
            {
                "ahu-1.supply_temp_c": 16.75,
                "ahu-1.fan_kw": 3.125,
                "ahu-1.space_temp_setpoint_c": 22.0,
                "hp-1.mode": 3.0,  # cool
                "hp-1.cop": 3.5,
                "light-open.occupied": 1.0,
                "light-open.level_pct": 80.0,
                "fire-1.alarm": 1.0,
            }
        )
        self.commands: list[tuple[str, float]] = []

    def read(self) -> dict[str, float]:
        return dict(self.values)

    def command(self, name: str, value: float) -> None:
        self.commands.append((name, value))
        self.values[name] = value


@pytest.fixture
def plant() -> Plant:
    return Plant()


@pytest.fixture
async def served(plant: Plant) -> AsyncIterator[BacnetServer]:
    async with BacnetServer(BAS, values=plant.read, command=plant.command, port=0) as s:
        yield s


async def bacnet_js(port: int, ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run the peer's ops against 127.0.0.1:``port``; one answer per op."""
    node = shutil.which("node")
    if node is None or not (PEER / "node_modules" / "@bacnet-js" / "client").is_dir():
        pytest.fail("the interop peer is missing: run scripts/system-deps.sh (Node.js 20 + npm)")
    plan = {"host": "127.0.0.1", "port": port, "timeout_ms": 3000, "ops": ops}
    proc = await asyncio.create_subprocess_exec(
        node,
        str(PEER / "probe.js"),
        json.dumps(plan),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, err.decode()
    answers = [json.loads(line) for line in out.decode().splitlines()]
    assert len(answers) == len(ops), out.decode() + err.decode()
    return answers


def read(kind: str, instance: int, prop: str = "PRESENT_VALUE") -> dict[str, Any]:
    return {"op": "read", "object": [kind, instance], "property": prop}


def refused(error_class: int, code: int) -> dict[str, Any]:
    return {"ok": False, "error": f"BacnetError - Class:{error_class} - Code:{code}"}


async def test_bacnet_js_reads_the_served_points(plant: Plant, served: BacnetServer) -> None:
    answers = await bacnet_js(
        served.port,
        [
            read("ANALOG_INPUT", 2),  # ahu-1.supply_temp_c
            read("ANALOG_INPUT", 2, "OBJECT_NAME"),
            read("ANALOG_INPUT", 2, "UNITS"),
            read("ANALOG_INPUT", 5, "UNITS"),  # ahu-1.fan_kw
            read("MULTI_STATE_VALUE", 100),  # hp-1.mode
            read("BINARY_INPUT", 200),  # light-open.occupied
            read("BINARY_INPUT", 400),  # fire-1.alarm
            read("BINARY_INPUT", 400, "STATUS_FLAGS"),  # in-alarm: bit 0
            read("BINARY_INPUT", 401, "STATUS_FLAGS"),  # fire-1.trouble quiet
            {
                "op": "readMultiple",
                "objects": [["ANALOG_INPUT", 5], ["ANALOG_INPUT", 105], ["ANALOG_VALUE", 201]],
                "properties": ["PRESENT_VALUE", "OBJECT_NAME"],
            },
        ],
    )
    assert [a["values"] for a in answers] == [
        [16.75],
        ["ahu-1.supply_temp_c"],
        [DEGREES_CELSIUS],
        [KILOWATTS],
        [3],
        [1],
        [1],
        [[1]],
        [[0]],
        [
            [[3.125], ["ahu-1.fan_kw"]],
            [[3.5], ["hp-1.cop"]],
            [[80.0], ["light-open.level_pct"]],
        ],
    ]


async def test_bacnet_js_writes_a_setpoint_and_bad_writes_are_refused(
    plant: Plant, served: BacnetServer
) -> None:
    def write(kind: str, instance: int, value: Any, tag: str = "REAL") -> dict[str, Any]:
        return {"op": "write", "object": [kind, instance], "tag": tag, "value": value}

    answers = await bacnet_js(
        served.port,
        [
            write("ANALOG_VALUE", 7, 21.5),  # ahu-1.space_temp_setpoint_c: 16 .. 28
            read("ANALOG_VALUE", 7),
            write("ANALOG_VALUE", 7, 28.25),
            write("ANALOG_VALUE", 7, "NaN"),
            write("MULTI_STATE_VALUE", 100, 4, "UNSIGNED_INTEGER"),  # hp-1.mode: 3 states
            write("ANALOG_INPUT", 5, 1.0),  # ahu-1.fan_kw: measured
            write("ANALOG_VALUE", 99, 1.0),  # no such object
            read("ANALOG_VALUE", 7),
        ],
    )
    assert answers == [
        {"ok": True, "values": []},
        {"ok": True, "values": [21.5]},
        refused(PROPERTY, VALUE_OUT_OF_RANGE),
        refused(PROPERTY, VALUE_OUT_OF_RANGE),
        refused(PROPERTY, VALUE_OUT_OF_RANGE),
        refused(PROPERTY, WRITE_ACCESS_DENIED),
        refused(OBJECT, UNKNOWN_OBJECT),
        {"ok": True, "values": [21.5]},
    ]
    assert plant.commands == [("ahu-1.space_temp_setpoint_c", 21.5)]
    assert plant.values["hp-1.mode"] == 3.0 and plant.values["ahu-1.fan_kw"] == 3.125
    assert [w.error for w in served.writes] == [
        "",
        "valueOutOfRange",
        "valueOutOfRange",
        "valueOutOfRange",
        "writeAccessDenied",
        "unknownObject",
    ]
    assert math.isnan(served.writes[2].value)
