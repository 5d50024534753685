"""The SunSpec catalogue: families by served models, and every point in the vocabulary."""

import pytest

from openmeg.core.points import unit_of
from openmeg.der.sunspec_catalogue import MPPT_READINGS, READINGS, family_of


@pytest.mark.parametrize(
    ("models", "family", "operable"),
    [
        ((1, 101, 120, 123), "inverter", True),  # the single-phase inverter that crashed the MEG
        ((1, 103, 123), "inverter", True),
        ((1, 113, 160), "inverter", True),
        ((1, 701, 702, 704), "inverter", True),
        ((1, 103, 124, 123, 203), "storage", True),
        ((1, 103, 124, 123), "storage", True),  # a battery without meter model 203
        ((1, 701, 702, 704, 802), "storage", True),
        ((1, 701, 713), "storage", True),
        ((1, 802), "storage", False),
        ((1, 203), "meter", True),
        ((1, 201, 101), "inverter", True),  # an inverter with its own meter
        ((1, 64900), "transfer_switch", True),
        ((1, 64901), "sensor", True),
        ((1, 64902), "heat_storage", True),
        ((1, 64903), "line_switch", True),
        ((1,), "unknown", False),
        ((1, 705), "unknown", False),
    ],
)
def test_family_by_served_models(models: tuple[int, ...], family: str, operable: bool) -> None:
    found, reason = family_of(models)
    assert found == family and (reason is None) == operable


def test_reasons_say_what_is_missing() -> None:
    assert family_of((1,))[1] == (
        "it serves only the common model 1, no measurement model openmeg reads "
        "(101, 102, 103, 111, 112, 113, 701, 201, 202, 203, 204, 64900, 64901, 64902, 64903)"
    )
    assert family_of((1, 705))[1] == (
        "it serves models 1, 705, no measurement model openmeg reads "
        "(101, 102, 103, 111, 112, 113, 701, 201, 202, 203, 204, 64900, 64901, 64902, 64903)"
    )


def test_every_point_discovery_maps_is_in_the_vocabulary() -> None:
    names = {point for family in READINGS.values() for point in family}
    names |= {"p_limit_pct", "p_set_kw", "pf_set", "connected", "switch_command"}
    names |= {f"mppt{n}_{suffix}" for n in (1, 12) for suffix, _, _ in MPPT_READINGS}
    for name in sorted(names):
        assert unit_of(name)
    assert (unit_of("mppt2_dc_kw"), unit_of("pf_set")) == ("kW", "1")
    with pytest.raises(KeyError, match="not in the vocabulary"):
        unit_of("mppt0_dc_kw")
