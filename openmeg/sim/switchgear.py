"""The field's line switches and ties, with their protection, as real equipment acts.

A fault on a line draws fault current from the source through every closed switch on the way;
their fault passage indicators latch, and the breaker nearest the fault trips (opens). What the
source no longer reaches goes dark. A switch closed so that the fault is supplied again passes
fault current again: the breaker trips again. The fault stays until it is cleared (the repair).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openmeg.core.errors import CommandError
from openmeg.core.site import Site
from openmeg.core.topology import (
    energised,
    fault_path,
    line_index,
    normal_state,
    protecting,
    switch_index,
)

KIND_CODE = {"breaker": 1, "sectionalizer": 2, "tie": 3}
"""``switch_kind`` values (model 64903 ``Typ``)."""
OPEN, CLOSE, RESET = 1, 2, 3
"""``switch_command`` values (model 64903 ``Cmd``); 0 does nothing."""
FAULT_KEY = "_fault"
"""The fault's entry in the field's state file (no device id starts with '_')."""


class Switchgear:
    """The switches of ``site``'s network (``net``, from ``network_of``): positions, fault
    passage indicators, a fault, and the buses that are dark."""

    def __init__(self, site: Site, net: Any) -> None:
        self._net = net
        self._index = switch_index(net)
        self._lines = line_index(net)
        self.kind = {sw.id: sw.kind for sw in site.network.switches} | {
            t.id: "tie" for t in site.network.ties
        }
        self.closed = normal_state(net)
        self.indicator = dict.fromkeys(self.kind, False)
        self.fault: str | None = None
        """The faulted line, until it is cleared."""
        self.trips: list[str] = []
        """Every trip by protection, in order."""
        self.log: list[tuple[str, str]] = []
        """Every operation in order: ``(switch, "open" | "close" | "trip" | "reset")``."""
        self.dead: set[int] = set()
        """The buses the source does not reach."""

    def position(self, switch: str) -> bool:
        return self.closed[self._index[switch]]

    def read(self) -> dict[str, float]:
        """Every switch's points: ``<id>/switch_closed``, ``fault_passed``, ``switch_kind``."""
        out: dict[str, float] = {}
        for s, kind in self.kind.items():
            out[f"{s}/switch_closed"] = 1.0 if self.position(s) else 0.0
            out[f"{s}/fault_passed"] = 1.0 if self.indicator[s] else 0.0
            out[f"{s}/switch_kind"] = float(KIND_CODE[kind])
        return out

    def dark_bus_names(self) -> list[str]:
        return sorted(str(self._net.bus.at[b, "name"]) for b in self.dead)

    def inject(self, line: str) -> list[str]:
        """A fault on ``line``: the switches that tripped (none when the line is dark);
        ``CommandError`` when no switch could clear it."""
        if line not in self._lines:
            raise CommandError(f"no line {line!r} in the network; lines: {sorted(self._lines)}")
        if self.fault is not None:
            raise CommandError(f"{self.fault} is faulted already: clear it first")
        supplied = fault_path(self._net, self.closed, self._lines[line])
        if not supplied and self._fed(line):
            raise CommandError(
                f"no switch between the source and {line}: nothing in the field clears a fault "
                "there; put a breaker on its feeder in the site file's network.switches"
            )
        self.fault = line
        before = len(self.trips)
        self._protect()
        return self.trips[before:]

    def clear(self, *, reset_indicators: bool = True) -> None:
        """The repair: the fault is gone; the crew resets the latched indicators unless told
        not to (then the operator resets them by command). Switches stay where they are."""
        self.fault = None
        if reset_indicators:
            self.indicator = dict.fromkeys(self.kind, False)

    def command(self, switch: str, value: float) -> None:
        """Carry out ``switch_command`` ``value`` on ``switch`` (1 open, 2 close, 3 reset
        the indicator, 0 nothing), then let protection act."""
        if switch not in self.kind:
            raise CommandError(f"no switch {switch!r}; switches: {', '.join(sorted(self.kind))}")
        if value not in (0.0, OPEN, CLOSE, RESET):
            raise CommandError(
                f"{switch}/switch_command takes 0 (none), 1 (open), 2 (close) or 3 (reset the "
                f"fault passage indicator), got {value}"
            )
        if value == RESET:
            self.indicator[switch] = False
            self.log.append((switch, "reset"))
        elif value in (OPEN, CLOSE):
            self.closed[self._index[switch]] = value == CLOSE
            self.log.append((switch, "close" if value == CLOSE else "open"))
        self._protect()

    def state(self) -> list[tuple[str, dict[str, Any]]]:
        """What survives a restart of the field: positions, indicators, the fault."""
        out: list[tuple[str, dict[str, Any]]] = [
            (s, {"switch_closed": self.position(s), "fault_passed": self.indicator[s]})
            for s in self.kind
        ]
        return out + ([(FAULT_KEY, {"line": self.fault})] if self.fault is not None else [])

    def restore(self, saved: Mapping[str, Mapping[str, Any]]) -> None:
        for s in self.kind:
            if s in saved:
                self.closed[self._index[s]] = bool(saved[s].get("switch_closed", True))
                self.indicator[s] = bool(saved[s].get("fault_passed", False))
        line = saved.get(FAULT_KEY, {}).get("line")
        self.fault = line if line in self._lines else None
        self._protect()

    def _fed(self, line: str) -> bool:
        i = self._lines[line]
        ends = {int(self._net.line.at[i, e]) for e in ("from_bus", "to_bus")}
        return bool(ends & energised(self._net, self.closed))

    def _protect(self) -> None:
        names = {i: n for n, i in self._index.items()}
        while self.fault is not None:
            path = fault_path(self._net, self.closed, self._lines[self.fault])
            if not path:
                break
            for s in path:
                self.indicator[names[s]] = True
            tripping = protecting(self._net, path)
            self.closed[tripping] = False
            self.trips.append(names[tripping])
            self.log.append((names[tripping], "trip"))
        buses = {int(b) for b in self._net.bus.index}
        self.dead = buses - energised(self._net, self.closed)
