"""Cross-cutting checks of the simulated truck (`sim.truck`, `sim.cycles`) that are slower or broader than the notebook tests.

Expected values are derived independently: by hand from the parameters, from the output signals, or from a
run at a ten times finer integration step.
"""
import math
import numpy as np
import pytest
from tspace.config.core import resource_path
from tspace.config.truck import TruckParams
from tspace.sim.cycles import cycle_names, load_cycle
from tspace.sim.truck import TruckSim

P = TruckParams()
FS = 20.0


def test_energy_balance_on_a_graded_slice():
    "Battery energy from the signals = road work (by hand, grade at the truck's own position) + kinetic + brakes + losses + aux, within 1 %."
    cyc = load_cycle("longhaul_slice", P.max_speed_kmh).slice(0, 600)
    assert cyc.grade.min() < -0.01, "the slice must include a real grade"
    sim = TruckSim(cyc, sample_hz=FS)
    df = sim.run_cycle(); L = sim.ledger
    v = df.velocity.to_numpy() / 3.6
    x = np.cumsum(v) / FS                                                 # truck position at each sample, m
    cx = np.concatenate([[0.0], np.cumsum((cyc.speed_kmh[1:] + cyc.speed_kmh[:-1]) / 7.2 * np.diff(cyc.time_s))])
    theta = np.arctan(np.interp(x, cx, cyc.grade))
    mg = P.mass_kg * P.gravity_mps2
    rolling = np.sum(mg * P.rolling_resistance * np.cos(theta) * v) / FS
    grade = np.sum(mg * np.sin(theta) * v) / FS
    aero = np.sum(0.5 * P.air_density_kgm3 * P.drag_area_m2 * v ** 3) / FS
    kinetic = 0.5 * P.mass_kg * P.rotating_mass_factor * v[-1] ** 2       # starts at rest
    aux = P.aux_power_w * len(v) / FS
    by_hand = rolling + grade + aero + kinetic + L.friction_brake_j + L.motor_loss_j + L.driveline_j + aux
    from_signals = float(np.sum(df.current * df.voltage)) / FS
    assert grade < -0.03 * from_signals, "downhill work is a sizeable share"
    assert from_signals == pytest.approx(by_hand, rel=0.01)


@pytest.mark.parametrize("name", cycle_names())
def test_soc_follows_chemical_energy_and_ledger_closes(name):
    "SOC drop x capacity equals the chemical energy drawn; the ledger's two balances close on every shipped cycle."
    sim = TruckSim(name, sample_hz=FS)
    sim.run_cycle(); L = sim.ledger
    drawn = (P.initial_soc - sim.soc) * P.battery_capacity_kwh * 3.6e6
    assert drawn == pytest.approx(L.battery_chemical_j, rel=1e-6)
    assert L.battery_chemical_j == pytest.approx(L.battery_terminal_j + L.resistive_j, rel=1e-9)
    wheel = L.wheel_traction_j - L.wheel_regen_j
    assert wheel == pytest.approx(L.kinetic_j + L.rolling_j + L.aero_j + L.grade_j + L.friction_brake_j, rel=1e-6, abs=1.0)
    assert L.balance_error() < 1e-9
    assert L.friction_brake_j >= -1e-6 and L.resistive_j > 0 and L.motor_loss_j > 0


def test_sensor_noise_is_only_on_the_sensors():
    "Noise changes the signals by zero-mean Gaussians of the configured std, never the driving itself."
    clean = TruckSim("udds", sample_hz=FS).run(6000).to_frame()               # 300 s
    noisy_p = TruckParams(noise_velocity_kmh=0.5, noise_current_a=3.0, noise_voltage_v=1.0)
    noisy = TruckSim("udds", params=noisy_p, sample_hz=FS, seed=11).run(6000).to_frame()
    np.testing.assert_array_equal(noisy.thrust, clean.thrust)
    np.testing.assert_array_equal(noisy.brake, clean.brake)
    moving = clean.velocity > 5
    for col, std in (("velocity", 0.5), ("current", 3.0), ("voltage", 1.0)):
        d = (noisy[col] - clean[col])[moving]
        assert abs(d.mean()) < 4 * std / math.sqrt(len(d)) + 1e-9, col
        assert d.std() == pytest.approx(std, rel=0.1), col


def test_integration_converges():
    "100 Hz (default) agrees with a ten times finer step on speed and energy."
    cyc = load_cycle("udds").slice(0, 200)
    runs = {}
    for hz in (100.0, 1000.0):
        sim = TruckSim(cyc, params=TruckParams(sim_hz=hz), sample_hz=FS)
        runs[hz] = (sim.run_cycle(), sim.ledger)
    (d1, l1), (d2, l2) = runs[100.0], runs[1000.0]
    assert np.abs(d1.velocity - d2.velocity).max() < 0.5
    assert l1.battery_terminal_j == pytest.approx(l2.battery_terminal_j, rel=0.01)
    assert l1.distance_m == pytest.approx(l2.distance_m, rel=0.002)


def test_cycles_ship_inside_the_package():
    "Cycles and the stock map are read from tspace's own res/, never from a sibling checkout."
    for name in cycle_names():
        path = resource_path("cycles", f"{name}.csv")
        assert path.is_file() and "shared" not in path.parts
    assert resource_path("torque_map_default.csv").is_file()
