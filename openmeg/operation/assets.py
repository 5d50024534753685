"""Asset management (Y.2071 clause 8, operation domain): the devices the platform operates,
those the site file names and those added at run time by address, with what discovery found;
the added ones are kept in the store, so that a restart connects them again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from openmeg.core.addresses import DeviceAddress
from openmeg.core.store import Store

ADDED = "added"


@dataclass(frozen=True, kw_only=True)
class Asset:
    """A device on the wire: where it answers and what it is."""

    address: DeviceAddress
    family: str
    models: tuple[int, ...]
    origin: str  # "site" or "added"
    manufacturer: str = ""
    model_name: str = ""
    monitored_only: str | None = None
    """Why openmeg can only monitor it (``None``: it is operated)."""

    @property
    def id(self) -> str:
        return self.address.id

    def state(self) -> dict[str, Any]:
        a = self.address
        return {
            "origin": self.origin,
            "host": a.host,
            "port": a.port,
            "unit": a.unit,
            "family": self.family,
            "models": list(self.models),
            "manufacturer": self.manufacturer,
            "model_name": self.model_name,
            "monitored_only": self.monitored_only,
        }


class AssetRegistry:
    """The devices of one site, in the order they were connected."""

    def __init__(self, site: str, store: Store) -> None:
        self.site, self.store = site, store
        self.assets: dict[str, Asset] = {}

    def remembered(self) -> list[DeviceAddress]:
        """The addresses of the devices added at run time before, as the store keeps them."""
        out = []
        for device, state in self.store.load_states(self.site).items():
            if state.get("origin") == ADDED:
                out.append(
                    DeviceAddress(
                        id=device,
                        host=str(state["host"]),
                        port=int(state["port"]),
                        unit=int(state["unit"]),
                    )
                )
        return out

    def record(self, asset: Asset, ts: datetime) -> None:
        """Keep ``asset``; an added one is written to the store."""
        self.assets[asset.id] = asset
        if asset.origin == ADDED:
            self.store.save_states(self.site, ts, [(asset.id, asset.state())])
