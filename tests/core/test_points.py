import pytest

from openmeg.core.points import Access, PointId, PointSpec


def test_point_id_round_trip_and_validation() -> None:
    pid = PointId.parse("demo/bess1/soc")
    assert (pid.site, pid.device, pid.name) == ("demo", "bess1", "soc")
    assert str(pid) == "demo/bess1/soc"
    with pytest.raises(ValueError, match="site/device/name"):
        PointId.parse("demo/soc")
    with pytest.raises(ValueError, match="device"):
        PointId(site="demo", device="bad device", name="p_kw")


def test_point_spec_command_range() -> None:
    spec = PointSpec(
        name="p_set_kw",
        unit="kW",
        description="setpoint",
        access=Access.READ_WRITE,
        low=-50,
        high=50,
    )
    spec.check_command(50)
    spec.check_command(-50)
    with pytest.raises(ValueError, match=r"accepted -50 \.\. 50 kW"):
        spec.check_command(50.1)
    with pytest.raises(ValueError, match="NaN"):
        spec.check_command(float("nan"))
    with pytest.raises(ValueError, match="read-only"):
        PointSpec(name="soc", unit="%", description="").check_command(1)


def test_every_point_on_the_wire_is_in_the_vocabulary() -> None:
    from openmeg.core.points import unit_of
    from openmeg.core.site import load_site
    from openmeg.der.sunspec_map import POINT_MAP
    from openmeg.sim.live_plant import device_commands

    names = {m.point for family in POINT_MAP.values() for m in family}
    names |= {key.split("/")[1] for key in device_commands(load_site("demo"))}
    for name in sorted(names):
        assert unit_of(name)
    with pytest.raises(KeyError, match="not in the vocabulary"):
        unit_of("flux")
