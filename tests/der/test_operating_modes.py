"""What devices do by themselves: self-consumption with an outage reserve, heat-led CHP."""

from openmeg.der.operating_modes import heat_led_chp_request_kw, self_consumption_request_kw


def test_self_consumption_covers_the_deficit_above_the_reserve() -> None:
    assert self_consumption_request_kw(5.0, 0.31, 0.3, True) == 5.0
    assert self_consumption_request_kw(-4.0, 0.2, 0.3, True) == -4.0  # charges below it


def test_self_consumption_keeps_the_reserve_on_the_grid_and_releases_it_off_it() -> None:
    assert self_consumption_request_kw(5.0, 0.3, 0.3, True) == 0.0
    assert self_consumption_request_kw(5.0, 0.2, 0.3, True) == 0.0
    assert self_consumption_request_kw(5.0, 0.2, 0.3, False) == 5.0


def test_heat_led_law_hysteresis_and_output() -> None:
    args = (100.0, 600.0, 0.33, 0.55, 25.0, 50.0)  # demand kW, capacity kWh, etas, limits
    assert heat_led_chp_request_kw(False, 0.5, *args) == 0.0  # in the band, off stays off
    # in the band, on stays on: (100 + 0.2*600) kW heat * 0.33/0.55 = 132 kW -> max 50
    assert heat_led_chp_request_kw(True, 0.5, *args) == 50.0
    assert heat_led_chp_request_kw(False, 0.3, 10.0, 600.0, 0.33, 0.55, 25.0, 50.0) == 50.0
    # soc 0.69: (10 + 0.01*600) = 16 kW heat -> 9.6 kW el -> raised to the minimum load
    assert heat_led_chp_request_kw(True, 0.69, 10.0, 600.0, 0.33, 0.55, 25.0, 50.0) == 25.0
    assert heat_led_chp_request_kw(True, 0.9, *args) == 0.0
