"""The Gymnasium environment `tspace/TruckEnergy-v0` across modules: registration, the vehicle config, row windows and episodes."""
import copy
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from tspace.config.vehicle import VehicleConfig
from tspace.sim.env import ENV_ID, TruckEnergyEnv, baseline, run_episode
from tspace.sim.cycles import HELDOUT_CYCLE, TRAIN_CYCLES
from tspace.system.errors import DataError

STOCK = np.ones((4, 17), dtype=np.float32)    # the env's actions span [-budget, 0]: 1 keeps the stock map


def test_registered_env_with_checker_wrappers():
    env = gym.make(ENV_ID, cycle="triangle")        # gym.make adds the passive checker and order enforcing
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs) and info["cycle"] == "triangle"
    for _ in range(5):
        obs, r, term, trunc, inf = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs) and np.isfinite(r)
    env.close()


@pytest.mark.parametrize("interface,shape", [("sim", (30, 3)), ("cloud", (200, 3))])
def test_env_from_vehicle_config(interface, shape):
    vehicle = VehicleConfig(interface=interface)
    env = TruckEnergyEnv.from_vehicle(vehicle, cycle="triangle")
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs.shape == shape
    np.testing.assert_array_equal(env.sim.stock_map.table, vehicle.torque_map.load())


def test_episode_totals_match_the_simulator():
    env = TruckEnergyEnv("hwfet")
    env.reset(seed=0)
    after_reset = copy.copy(env.sim.ledger)                       # the reset frame belongs to no step
    e = d = 0.0; done = False; starts = set()
    while not done:
        _, _, terminated, done, info = env.step(STOCK)            # the cycle's end is a time limit: truncated, never terminated
        assert not terminated
        e += info["energy_wh"]; d += info["distance_m"]; starts.add(info["rows_start"])
    L = env.sim.ledger
    assert e == pytest.approx(L.energy_wh - after_reset.energy_wh, rel=0.01)
    assert d == pytest.approx(L.distance_m - after_reset.distance_m, abs=1e-6)
    # HWFET runs up to 96 km/h: between rows 10 (92.3) and 11 (101.5) the window starts at row 9
    assert 0 in starts and 9 in starts and max(starts) == 9


def test_flashed_rows_persist_and_stock_action_restores():
    "Rows stay as last written when the window moves on; the stock action writes the stock rows of its window."
    env = TruckEnergyEnv("udds")
    obs, _ = env.reset(seed=0)
    stock = env.sim.stock_map
    for _ in range(60):                                           # lower rows 0..3 until the truck leaves that window
        window = stock.window(float(obs[:, 0].mean()), 4)
        obs, _, _, _, info = env.step(-np.ones((4, 17)) if window == 0 else STOCK)
        assert info["rows_start"] == window
        if window > 0: break
    s = info["rows_start"]
    assert s > 0
    lowered = np.maximum(stock.table[:s] - 250, stock.table[:s, :1])   # -1: the full budget, but the stock torque at zero pedal, monotone
    np.testing.assert_allclose(env.sim.torque_map.table[:s], lowered)
    np.testing.assert_array_equal(env.sim.torque_map.table[s:s + 4], stock.table[s:s + 4])
    np.testing.assert_array_equal(env.sim.torque_map.table[s + 4:], stock.table[s + 4:])


@pytest.mark.parametrize("bad,msg", [(np.full((4, 17), np.nan), "non-finite"), (np.zeros(68), "expected (4, 17)"),
                                     (np.zeros((4, 16)), "expected (4, 17)"), (np.full((4, 17), -1.01), "outside [-1, 1]"),
                                     ("lower please", "action")])
def test_bad_actions_raise_data_error(bad, msg):
    env = TruckEnergyEnv("triangle")
    env.reset(seed=0)
    with pytest.raises(DataError, match=None) as e:
        env.step(bad)
    assert msg in str(e.value)


def test_split_and_baseline():
    assert HELDOUT_CYCLE not in TRAIN_CYCLES
    b = baseline("triangle")
    assert b["cycle"] == "triangle" and b["distance_km"] == pytest.approx(0.0405, rel=0.1)
    assert 700 < b["wh_per_km"] < 1600
    # a policy is called with each observation
    seen = []
    run_episode(TruckEnergyEnv("triangle"), policy=lambda o: (seen.append(o.shape), STOCK)[1])
    assert seen and all(s == (30, 3) for s in seen)
