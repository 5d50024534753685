"""Who may publish what on the bus: the components of the platform and their topics.

One declarative table, used alike by the in-process bus (``openmeg.core.scoped_bus``) and by
the broker's ACL file (``openmeg.protocols.broker_config``). Topic filters are written with
``{site}`` for the site id; ``+`` is one level, ``#`` the rest (MQTT).
"""

from __future__ import annotations

from dataclasses import dataclass

ALARMS = "meg/{site}/operation/alarms/+"
READ_ALL = "meg/{site}/#"
#: last topic levels under ``meg/<site>/customer/<id>/`` that carry messages, not device points
CUSTOMER_MESSAGES = ("readings", "price", "peak", "trading")


@dataclass(frozen=True, kw_only=True, slots=True)
class Component:
    """One identity on the bus: what it may publish (``publishes`` less ``denies``) and read."""

    name: str
    what: str
    publishes: tuple[str, ...]
    denies: tuple[str, ...] = ()
    reads: tuple[str, ...] = (READ_ALL,)


COMPONENTS: tuple[Component, ...] = (
    Component(
        name="feeder",
        what="DER data feeder: device points, the results of operators' commands, alarms",
        publishes=(
            "meg/{site}/der/+/+",
            "meg/{site}/distribution/+/+",
            "meg/{site}/customer/+/+",
            "meg/{site}/command-result/+/+",
            ALARMS,
        ),
        denies=tuple(f"meg/{{site}}/customer/+/{m}" for m in CUSTOMER_MESSAGES),
    ),
    Component(
        name="head-end",
        what="AMI head-end: interval readings of the meters, alarms",
        publishes=("meg/{site}/customer/+/readings", ALARMS),
    ),
    Component(
        name="mdms",
        what="MDMS ingest: the readings it stored, alarms",
        publishes=("meg/{site}/mdms/#", ALARMS),
    ),
    Component(
        name="market",
        what="market price server: real-time prices and their changes, alarms",
        publishes=("meg/{site}/market/prices", ALARMS),
    ),
    Component(
        name="operation",
        what="control cycle, SCADA, commands, device adds, restoration: mode, results, alarms",
        publishes=(
            "meg/{site}/operation/#",
            "meg/{site}/distribution/mode",
            "meg/{site}/command-result/#",
        ),
    ),
    Component(
        name="provider",
        what="service provider: each customer's price and peak demand, alarms",
        publishes=("meg/{site}/customer/+/price", "meg/{site}/customer/+/peak", ALARMS),
    ),
    Component(
        name="customer",
        what="prosumer economics: trading accounts, trading and time alarms",
        publishes=("meg/{site}/customer/+/trading", ALARMS),
    ),
    Component(
        name="operator",
        what="an outside client (HMI, CLI): signed commands and device adds only",
        publishes=("meg/{site}/command/+/+", "meg/{site}/operation/devices/add"),
    ),
)
PLATFORM = tuple(c.name for c in COMPONENTS if c.name != "operator")
_BY_NAME = {c.name: c for c in COMPONENTS}


def component(name: str) -> Component:
    """The component called ``name``; ``KeyError`` names the known ones."""
    try:
        return _BY_NAME[name]
    except KeyError:
        known = ", ".join(_BY_NAME)
        raise KeyError(f"no bus component {name!r}: the components are {known}") from None


def user_name(site: str, name: str) -> str:
    """The broker user of component ``name`` at ``site``: ``openmeg-<site>-<component>``."""
    return f"openmeg-{site}-{name}"


def filters(site: str, patterns: tuple[str, ...]) -> tuple[str, ...]:
    """``patterns`` for ``site``."""
    return tuple(p.format(site=site) for p in patterns)


def matches(pattern: str, topic: str) -> bool:
    """Whether ``topic`` matches the MQTT topic filter ``pattern``."""
    pat, top = pattern.split("/"), topic.split("/")
    for i, part in enumerate(pat):
        if part == "#":
            return i == len(pat) - 1
        if i >= len(top) or (part != "+" and part != top[i]):
            return False
    return len(pat) == len(top)


def may_publish(site: str, name: str, topic: str) -> bool:
    """Whether component ``name`` of ``site`` may publish on ``topic``."""
    c = component(name)
    if any(matches(p, topic) for p in filters(site, c.denies)):
        return False
    return any(matches(p, topic) for p in filters(site, c.publishes))
