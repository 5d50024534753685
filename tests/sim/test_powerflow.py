"""The batched power flow agrees with pandapower's runpp to 1e-6 p.u. on the site network."""

import copy

import numpy as np
import pandapower as pp
import pytest

from openmeg.core.network import load_network
from openmeg.sim.grid.powerflow import BatchPowerFlow


def _snapshot(net: object, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = len(net.bus)  # type: ignore[attr-defined]
    p = np.zeros(n)
    q = np.zeros(n)
    lv = np.flatnonzero(net.bus.vn_kv.to_numpy() < 1)  # type: ignore[attr-defined]
    p[lv] = rng.uniform(-0.02, 0.012, lv.size)  # MW into the bus: loads and PV
    q[lv] = np.where(p[lv] < 0, p[lv] * 0.33, 0.0)
    return p, q


def _pandapower(net: object, p: np.ndarray, q: np.ndarray, slack: int) -> object:
    net = copy.deepcopy(net)
    net.load.drop(net.load.index, inplace=True)
    net.ext_grid.drop(net.ext_grid.index, inplace=True)
    pp.create_ext_grid(net, bus=slack, vm_pu=1.0)
    for bus in range(len(net.bus)):
        if p[bus] or q[bus]:
            pp.create_load(net, bus=bus, p_mw=-p[bus], q_mvar=-q[bus])
    pp.runpp(net, tolerance_mva=1e-11, max_iteration=50)
    return net


@pytest.mark.parametrize("slack_name", ["Bus 0", "Bus R1"])
def test_batch_power_flow_matches_pandapower(slack_name: str) -> None:
    net = load_network("cigre_lv", None)
    slack = int(net.bus.index[net.bus.name == slack_name][0])
    pf = BatchPowerFlow(net, slack_bus=slack)
    rng = np.random.default_rng(42)
    snaps = [_snapshot(net, rng) for _ in range(4)]
    res = pf.solve(np.array([s[0] for s in snaps]), np.array([s[1] for s in snaps]))
    for k, (p, q) in enumerate(snaps):
        ref = _pandapower(net, p, q, slack)
        assert np.max(np.abs(res.vm_pu[k] - ref.res_bus.vm_pu.to_numpy())) < 1e-6
        assert np.max(np.abs(res.va_deg[k] - ref.res_bus.va_degree.to_numpy())) < 1e-4
        assert res.p_slack_mw[k] == pytest.approx(ref.res_ext_grid.p_mw.iloc[0], abs=1e-7)
        losses = ref.res_line.pl_mw.sum() + ref.res_trafo.pl_mw.sum()
        assert res.losses_mw[k] == pytest.approx(losses, abs=1e-7)
        np.testing.assert_allclose(res.line_loading_pct[k], ref.res_line.loading_percent, atol=1e-4)
    assert res.iterations < 30


def test_power_flow_of_no_load_is_flat() -> None:
    net = load_network("cigre_lv", None)
    pf = BatchPowerFlow(net, slack_bus=0)
    z = np.zeros((1, len(net.bus)))
    res = pf.solve(z, z)
    assert res.losses_mw[0] == pytest.approx(res.p_slack_mw[0])
    assert res.losses_mw[0] >= 0


def test_batch_power_flow_on_the_demo_network_with_switches_and_an_open_tie() -> None:
    from openmeg.core.site import load_site, network_of

    net = network_of(load_site("demo"))
    assert list(net.switch.name[net.switch.et == "l"]) == [
        "cb-r",
        "sw-r3",
        "sw-r5",
        "sw-r9",
        "tie-r18-c20",
    ]
    pf = BatchPowerFlow(net, slack_bus=0)
    p, q = _snapshot(net, np.random.default_rng(7))
    res = pf.solve(p[None, :], q[None, :])
    ref = _pandapower(net, p, q, 0)
    assert np.max(np.abs(res.vm_pu[0] - ref.res_bus.vm_pu.to_numpy())) < 1e-6
    assert res.losses_mw[0] == pytest.approx(
        ref.res_line.pl_mw.sum() + ref.res_trafo.pl_mw.sum(), abs=1e-7
    )
