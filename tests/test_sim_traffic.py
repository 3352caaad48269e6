"The following scenario (`tspace.sim.traffic`): its physics on every shipped cycle, and `tspace run --scenario following` end to end."
import json, math, subprocess
import numpy as np
import pytest

from tspace.config.truck import DriverModelParams
from tspace.sim.cycles import cycle_names
from tspace.sim.truck import TruckSim
from cli_helpers import TSPACE, clean_env

FOLLOW = DriverModelParams(scenario="following")
TINY = """episodes = 1
seed = 3
[agent]
hidden_units = [16, 16]
batch_size = 8
"""

@pytest.mark.parametrize("cycle", cycle_names())
def test_stock_truck_keeps_the_limits(cycle):
    sim = TruckSim(cycle, driver=FOLLOW)
    sim.run_cycle()
    fp, rep, L = FOLLOW.following, sim.following_report(), sim.ledger
    assert sim.done and math.isclose(sim.time_s, sim.cycle.duration_s + fp.settle_s, abs_tol=0.06)
    assert rep.min_gap_m >= fp.min_gap_m - 0.5, rep                               # no collision
    assert rep.max_gap_excess_s <= fp.max_gap_excess_s, rep                       # contact with traffic
    assert abs(rep.final_gap_m - fp.min_gap_m) <= fp.final_gap_tol_m, rep         # closed up to the stopped lead
    assert abs(L.distance_m - sim.cycle.distance_km * 1000) <= fp.final_gap_tol_m  # the same distance as the lead, within 1 m
    assert L.balance_error() < 1e-9                                               # the energy ledger closes
    assert rep.problems(fp) == []

def test_cycle_scenario_unchanged_by_following_fields():
    "The default stays the speed trace, and the following settings do not touch it."
    a = TruckSim("udds").run_cycle()
    b = TruckSim("udds", driver=DriverModelParams(following={"max_accel_mps2": 0.3})).run_cycle()
    assert DriverModelParams().scenario == "cycle" and TruckSim("udds").following_report() is None
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())

def test_a_lowered_map_opens_the_gap():
    "A truck that gets less torque than its driver expects falls back further: the limit is what keeps a saving honest."
    from tspace.data.torquemap import TorqueMap
    stock = TorqueMap.default()
    low = TorqueMap(np.maximum(stock.table - 250.0, 0.0), stock.speed_kmh, stock.pedal)
    s0, s1 = TruckSim("udds", driver=FOLLOW), TruckSim("udds", driver=FOLLOW, torque_map=None)
    s1.set_map(low)
    s0.run_cycle(); s1.run_cycle()
    assert s1.following_report().max_gap_excess_s > s0.following_report().max_gap_excess_s

def test_run_following_end_to_end(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    r = subprocess.run([TSPACE, "run", "--config", str(cfg), "--data", str(tmp_path / "data"), "--cycle", "triangle",
                        "--scenario", "following", "--episodes", "1", "--speedup", "50", "--quiet", "--no_plots"],
                       capture_output=True, text=True, env=clean_env(), timeout=170)
    assert r.returncode == 0, r.stderr[-3000:]
    (rd,) = list((tmp_path / "data" / "_runs").iterdir())
    lines = (rd / "drives.csv").read_text().splitlines()
    head, rows = lines[0].split(","), [l.split(",") for l in lines[1:]]
    assert [row[head.index("phase")] for row in rows] == ["train 1", "eval stock", "eval agent"]
    # the stock reference is the following scenario's: its Wh/km is the simulator's own for the same seed
    sim = TruckSim("triangle", driver=FOLLOW, sample_hz=50.0, seed=3 + 10_000)
    sim.run_cycle()
    stock = float(rows[1][head.index("wh_per_km")])
    assert math.isclose(stock, sim.ledger.energy_wh / (sim.ledger.distance_m / 1000), rel_tol=1e-6), stock
    summary = json.loads((rd / "summary.json").read_text())
    assert summary["vehicle_stats"]["vcu"]["refused_unsafe"] == 0
