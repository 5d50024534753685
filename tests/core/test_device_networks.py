"""Where devices may be added: ``site.device_networks`` parsed, and the default from the
site file's own addresses."""

import pytest
from pydantic import ValidationError

from openmeg.core.device_networks import parse_network, refusal
from openmeg.core.site import load_site
from openmeg.core.wiring import device_networks


def test_the_demo_adds_devices_on_its_own_host_above_the_well_known_ports() -> None:
    nets = device_networks(load_site("demo"))
    assert [str(n) for n in nets] == ["127.0.0.1/32:502,1502,10000-65535"]
    assert refusal(nets, "127.0.0.1", 15045) is None
    assert refusal(nets, "127.0.0.1", 502) is None
    for host, port in (("127.0.0.1", 5432), ("127.0.0.1", 6379), ("10.0.0.5", 15045)):
        reason = refusal(nets, host, port)
        assert reason is not None and f"{host}:{port} is outside the networks" in reason
    assert "is not an IP address" in (refusal(nets, "localhost", 15045) or "")


def test_a_site_file_names_its_networks_and_ports() -> None:
    demo = load_site("demo")
    info = demo.site.model_copy(update={"device_networks": ("10.1.0.0/24", "127.0.0.1/32:1502")})
    nets = device_networks(demo.model_copy(update={"site": info}))
    assert refusal(nets, "10.1.0.77", 5432) is None
    assert refusal(nets, "127.0.0.1", 1502) is None
    assert refusal(nets, "127.0.0.1", 15045) is not None
    assert str(parse_network("fd00::/64:502-510")) == "fd00::/64:502-510"


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("10.1.0.0", "has no /PREFIX"),
        ("10.1.0.1/24", "has host bits set"),
        ("10.1.0.0/24:99999", "ports are 1..65535"),
        ("10.1.0.0/24:a-b", "are not numbers"),
    ],
)
def test_bad_entries_name_what_is_accepted(entry: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_network(entry)
    demo = load_site("demo").model_dump(mode="json")
    demo["site"]["device_networks"] = [entry]
    with pytest.raises(ValidationError, match=reason):
        type(load_site("demo")).model_validate(demo)
