"""Commands through the DER data feeder: a point write on a device, acknowledged, or failed with
the device's answer (Y.2071 clause 10.2, the way down)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from openmeg.core.bus import Bus
from openmeg.core.errors import CommandError, DeviceError
from openmeg.core.messages import CommandResult, command_result_topic
from openmeg.der import sunspec_map as ssm
from openmeg.protocols.sunspec import encode, model_def, to_raw

if TYPE_CHECKING:
    from openmeg.distribution.feeder import Link


class _Clock(Protocol):
    def now(self) -> datetime: ...


class FeederCommands:
    """The command half of the feeder: ``site``, ``bus``, ``clock`` and ``links`` are its own."""

    site: str
    bus: Bus
    clock: _Clock
    links: dict[str, Link]

    async def command(
        self, device: str, point: str, value: float, *, user: str = "system"
    ) -> CommandResult:
        """Write a point on a device; the result says acknowledged, or why it failed."""
        now = self.clock.now()
        try:
            await self._write(device, point, value)
            result = CommandResult(
                site=self.site, device=device, name=point, value=value, accepted=True, ts=now
            )
        except (CommandError, DeviceError) as err:
            result = CommandResult(
                site=self.site,
                device=device,
                name=point,
                value=value,
                accepted=False,
                reason=str(err),
                ts=now,
            )
        await self.bus.publish(command_result_topic(self.site, device, point), result)
        return result

    async def _write(self, device: str, point: str, value: float) -> None:
        link = self.links.get(device)
        if link is None:
            raise CommandError(
                f"unknown device {device!r}; connected: {', '.join(sorted(self.links))}"
            )
        try:
            p = link.device.point(point)
        except KeyError as err:
            raise CommandError(str(err)) from err
        if not p.writable:
            raise CommandError(f"{device}/{point} is read-only")
        if (
            value != value
            or (p.low is not None and value < p.low)
            or (p.high is not None and value > p.high)
        ):
            raise CommandError(
                f"{value} is out of range for {device}/{point}: accepted {p.low} .. {p.high}"
            )
        dmap = link.device.map
        master = link.device.master
        if point == "p_set_kw":
            w_cha_max = dmap.value(ssm.STORAGE, "WChaMax") or 0.0
            if w_cha_max <= 0:
                raise CommandError(f"{device} does not tell its WChaMax; cannot scale a setpoint")
            block = dmap.block(ssm.STORAGE)
            writes = ssm.storage_setpoint(value, w_cha_max)
            for name in ("OutWRte", "InWRte", "StorCtl_Mod"):
                pd = block.model.points[name]
                sf = dmap.scale_factor(ssm.STORAGE, name)
                await master.write(block.address_of(name), encode(pd, to_raw(writes[name], sf)))
            return
        pd = model_def(p.model).points[p.name]
        sf = dmap.scale_factor(p.model, p.name)
        await master.write(p.address, encode(pd, to_raw(value / p.factor, sf)))
