"""The scenario the simulated field plays: the site file's own, or a scenario file in its place
(``openmeg simulate --scenario FILE``, ``openmeg sim serve --scenario FILE``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from openmeg.core.errors import Problem, SiteFileError
from openmeg.core.scenario import (
    Scenario,
    missing_physics,
    tag_kinds,
    unknown_scenario_devices,
)
from openmeg.core.site import Site, read_mapping, scenario_problems, validation_problems


def with_scenario_file(site: Site, path: str | Path) -> Site:
    """``site`` with the scenario in the file at ``path`` (a YAML mapping with the fields of a
    site file's scenario section) in place of its own; ``SiteFileError`` naming every problem."""
    path = Path(path)
    file = str(path)
    raw = read_mapping(
        path, "a scenario file is a YAML mapping with keys weather, outages, devices, ..."
    )
    shape = [{"id": d.id, "kind": d.kind} for d in site.devices]
    data, strangers = unknown_scenario_devices(tag_kinds({"devices": shape, "scenario": raw}))
    unknown = [
        Problem(file=file, field=f"devices.{s}", message=f"{s!r} is not a device id of the site")
        for s in strangers
    ]
    try:
        scenario = Scenario.model_validate(data["scenario"])
    except ValidationError as err:
        raise SiteFileError(unknown + validation_problems(err, file, scenario_at=())) from err
    found = [
        Problem(file=file, field=f.removeprefix("scenario."), message=m)
        for f, m in scenario_problems(site, scenario)
    ]
    if unknown or found:
        raise SiteFileError(unknown + found)
    return site.model_copy(update={"scenario": scenario})


def simulated_scenario(site: Site, file: str | None = None) -> Scenario:
    """The scenario of ``site``, complete enough for the simulated field to play; else
    ``SiteFileError`` naming what is missing (``file``: the site file, for the messages)."""
    where = file or f"site {site.site.id!r}"
    if site.scenario is None:
        raise SiteFileError(
            [
                Problem(
                    file=where,
                    field="scenario",
                    message=(
                        "the simulated field needs a scenario section (or --scenario FILE): "
                        "weather and the physics of the devices (see docs/site-file.md, "
                        "scenario); the platform alone (openmeg run --field site) needs none"
                    ),
                )
            ]
        )
    missing = missing_physics(site.scenario, [(d.id, d.kind) for d in site.devices])
    if missing:
        raise SiteFileError([Problem(file=where, field=f, message=m) for f, m in missing])
    return site.scenario
