"""The ``openmeg`` command: one module per command group, assembled here."""

from __future__ import annotations

import typer

from openmeg.cli.audit import audit_app
from openmeg.cli.bill import basic_charge_cmd, bill_cmd
from openmeg.cli.certs import certs_app
from openmeg.cli.devices import devices_app
from openmeg.cli.market import market_app
from openmeg.cli.meters import meters_app
from openmeg.cli.mqtt import mqtt_app
from openmeg.cli.prices import prices_app
from openmeg.cli.revenue import revenue_cmd
from openmeg.cli.run import run
from openmeg.cli.services import services_app
from openmeg.cli.sim import sim_app
from openmeg.cli.simulate import simulate
from openmeg.cli.site import site_app
from openmeg.cli.trade import trade_app
from openmeg.cli.users import users_app
from openmeg.cli.vee import vee_app

app = typer.Typer(
    help="openmeg: run and study a micro energy grid (ITU-T Y.2071).", no_args_is_help=True
)
app.add_typer(site_app, name="site")
app.command()(run)
app.add_typer(trade_app, name="trade")
app.add_typer(market_app, name="market")
app.add_typer(audit_app, name="audit")
app.add_typer(certs_app, name="certs")
app.add_typer(users_app, name="users")
app.command("revenue")(revenue_cmd)
app.command()(simulate)
app.add_typer(devices_app, name="devices")
app.add_typer(meters_app, name="meters")
app.add_typer(mqtt_app, name="mqtt")
app.add_typer(vee_app, name="vee")
app.command("bill")(bill_cmd)
app.command("basic-charge")(basic_charge_cmd)
app.add_typer(prices_app, name="prices")
app.add_typer(sim_app, name="sim")
app.add_typer(services_app, name="services")


def main() -> None:
    """Run the ``openmeg`` command."""
    app()
