"""The installed `tspace` console script, run as a user runs it: in a subprocess, with a clean TSPACE_* environment."""
import subprocess, tomllib

import tspace
from tspace.config.run import RunConfig

from cli_helpers import TSPACE, clean_env


def tspace_cli(*args, env=None):
    return subprocess.run([TSPACE, *args], capture_output=True, text=True, env=clean_env(env), timeout=60)


def test_version():
    r = tspace_cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"tspace {tspace.__version__}"


def test_config_show_prints_the_default_config_as_toml():
    r = tspace_cli("config", "show")
    assert r.returncode == 0, r.stderr
    shown = tomllib.loads(r.stdout)
    assert shown == RunConfig().model_dump(mode="json", exclude_none=True)
    assert shown["vehicle"]["physics"]["mass_kg"] > 0 and shown["site"]["timezone"] == "UTC"


def test_config_show_applies_file_and_environment_and_masks_secrets(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text('[agent]\ngamma = 0.9\n[site]\ntimezone = "Asia/Shanghai"\n')
    r = tspace_cli("config", "show", "--config", str(f),
                   env={"TSPACE_AGENT__GAMMA": "0.95", "TSPACE_STORAGE__PASSWORD": "do-not-print-me"})
    assert r.returncode == 0, r.stderr
    shown = tomllib.loads(r.stdout)
    assert shown["agent"]["gamma"] == 0.95 and shown["site"]["timezone"] == "Asia/Shanghai"
    assert "do-not-print-me" not in r.stdout and shown["storage"]["password"] == "**********"


def test_config_check_accepts_a_good_file(tmp_path):
    f = tmp_path / "ok.toml"
    f.write_text('[vehicle]\nid = "yard-truck-3"\n')
    r = tspace_cli("config", "check", str(f))
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


def test_config_check_lists_every_problem_and_exits_2(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text('speed = 3\n[agent]\ngamma = 7\n[site]\ntimezone = "Nowhere/Special"\n[hmi]\npassword = "x"\n')
    r = tspace_cli("config", "check", str(f))
    assert r.returncode == 2
    for want in ("speed = 3: unknown key", "agent.gamma = 7", "site.timezone = 'Nowhere/Special'", "hmi.password: secrets"):
        assert want in r.stderr, (want, r.stderr)
    assert r.stderr.count("\n  - ") == 4


def test_config_check_of_a_missing_file_and_of_broken_toml(tmp_path):
    assert tspace_cli("config", "check", str(tmp_path / "none.toml")).returncode == 2
    f = tmp_path / "broken.toml"
    f.write_text("[agent\n")
    r = tspace_cli("config", "check", str(f))
    assert r.returncode == 2 and "not valid TOML" in r.stderr


def test_config_show_with_a_bad_environment_value_names_the_variable():
    r = tspace_cli("config", "show", env={"TSPACE_EPISODES": "many"})
    assert r.returncode == 2 and "episodes = 'many'" in r.stderr and "TSPACE_EPISODES" in r.stderr


def test_help_gives_every_command_a_summary_and_every_command_describes_itself():
    from tspace.cli.main import COMMANDS
    r = tspace_cli("--help")
    assert r.returncode == 0 and "describes it" not in r.stdout, r.stdout
    for words, fn in COMMANDS.items():
        assert f"  {' '.join(words)}  " in r.stdout and fn.__doc__.splitlines()[0] in r.stdout, (words, r.stdout)
        h = tspace_cli(*words, "--help")
        assert h.returncode == 0 and h.stdout.startswith(f"usage: tspace {' '.join(words)} "), (words, h.stdout, h.stderr)


def test_sim_help_lists_the_options_of_both_machines():
    r = tspace_cli("sim", "--help")
    assert r.returncode == 0, r.stderr
    for option in ("--tbox", "--endpoint", "--prefix", "--vehicle", "--timezone", "--bus", "--channel", "--port", "--bridge", "--cycle"):
        assert option in r.stdout, (option, r.stdout)


def test_unknown_command_prints_usage_on_stderr_and_exits_2():
    r = tspace_cli("frobnicate", "--fast")
    assert r.returncode == 2 and r.stdout == ""
    assert "unknown command 'frobnicate --fast'" in r.stderr and "usage: tspace" in r.stderr and "pool info" in r.stderr


def test_usage_errors():
    r = tspace_cli("config")
    assert r.returncode == 2 and "config show" in r.stderr
    r = tspace_cli("config", "check")
    assert r.returncode == 2 and "file" in r.stderr


def test_pool_info_counts_records_per_vehicle_driver_and_episode(tmp_path):
    import numpy as np, pandas as pd
    from tspace.data.core import field_truck_meta, make_record, make_episode
    from tspace.storage.pool.parquet import ParquetPool
    meta = field_truck_meta(vehicle="yard-truck-3", driver="night-shift", timezone="Europe/Berlin")
    start = pd.Timestamp("2026-10-25T01:00:00+02:00")
    with ParquetPool(str(tmp_path / "pool"), meta) as pool:
        for ep, n in ((0, 3), (1, 5)):
            t0 = start + pd.Timedelta(hours=ep)
            recs = [make_record(meta, timestamp=t0 + pd.Timedelta(seconds=1.5 * (k + 1)), step=k, episode_start=t0,
                                state=np.zeros(meta.state.shape), action=np.zeros(meta.action.shape), reward=-1.0,
                                next_state=np.zeros(meta.state.shape), terminal=k == n - 1) for k in range(n)]
            pool.append_episode(make_episode(recs))
    r = tspace_cli("pool", "info", str(tmp_path / "pool"))
    assert r.returncode == 0, r.stderr
    assert "8 records in 2 episodes" in r.stdout and "yard-truck-3" in r.stdout and "night-shift" in r.stdout
    r = tspace_cli("pool", "info", str(tmp_path / "no-pool"))
    assert r.returncode == 2 and "no pool there" in r.stderr


def test_train_offline_from_a_pool_then_infer_from_its_checkpoint(tmp_path):
    "tspace train learns from a pool written here and saves a checkpoint that loads and acts; bad input exits 2."
    import numpy as np, pandas as pd
    from tspace.data.core import field_truck_meta, records_from_arrays
    from tspace.storage.pool.parquet import ParquetPool
    from tspace.agent.dpg import load_agent
    meta = field_truck_meta(vehicle="yard-truck-3", driver="night-shift")
    rng = np.random.default_rng(7)
    with ParquetPool(str(tmp_path / "pool"), meta) as pool:
        for e in range(2):
            t0, n = pd.Timestamp("2026-06-01T08:00:00Z") + pd.Timedelta(hours=e), 10
            s = rng.uniform(0, 1, size=(n + 1, *meta.state.shape))
            pool.append_episode(records_from_arrays(meta, timestamp=t0 + pd.to_timedelta(1.5 * np.arange(1, n + 1), unit="s"),
                                                    episode_start=t0, step=np.arange(n), state=s[:-1],
                                                    action=rng.uniform(-1, 1, size=(n, *meta.action.shape)), reward=-rng.uniform(1, 2, n),
                                                    next_state=s[1:], terminal=np.arange(n) == n - 1))
    cfg = tmp_path / "tiny.toml"
    cfg.write_text("[agent]\nhidden_units = [16, 16]\nbatch_size = 8\n")
    r = subprocess.run([TSPACE, "train", "--data", str(tmp_path / "pool"), "--config", str(cfg), "--updates", "15"],
                       capture_output=True, text=True, env=clean_env(), timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "learned from 20 record(s) in 2 episode(s)" in r.stdout and "15 update(s)" in r.stdout, r.stdout
    ck = r.stdout.split("checkpoint: ")[1].strip()
    assert "/pool/_runs/" in ck and "-offline-ddpg-" in ck
    agent = load_agent(ck)
    assert agent.updates == 15 and agent.act(np.zeros((30, 3), np.float32), explore=False).shape == (4, 17)
    r = subprocess.run([TSPACE, "train", "--data", str(tmp_path / "pool"), "--config", str(cfg), "--vehicle", "nobody"],
                       capture_output=True, text=True, env=clean_env(), timeout=120)
    assert r.returncode == 2 and "no stored episode of vehicle 'nobody'" in r.stderr, r.stderr[-2000:]
    r = subprocess.run([TSPACE, "train", "--data", str(tmp_path / "none")], capture_output=True, text=True, env=clean_env(), timeout=120)
    assert r.returncode == 2 and "no pool there" in r.stderr, r.stderr[-2000:]


def test_replay_stores_a_recorded_drive_that_tspace_train_learns_from(tmp_path):
    "A CAN log written here from the simulator -> tspace replay --pool -> one episode of stock-map records -> tspace train."
    import can, numpy as np, pandas as pd
    from tspace.conn.can import CanConfig, SignalCodec
    from tspace.sim.truck import TruckSim, SIGNALS
    from tspace.storage.pool.parquet import ParquetPool
    codec = SignalCodec.from_config(CanConfig())
    sim = TruckSim("triangle", sample_hz=50.0, seed=0)
    ch = sim.run(900)                                                     # 18 s of the triangle at 50 Hz
    t0 = pd.Timestamp("2026-06-01T08:00:00Z").timestamp()
    log = tmp_path / "drive.blf"
    with can.Logger(str(log)) as w:
        for k, (t, row) in enumerate(zip(ch.time_s, ch.signals.tolist())):
            for msg in codec.encode(dict(zip(SIGNALS, row)), counter=k, timestamp=t0 + float(t)): w.on_message_received(msg)
    r = subprocess.run([TSPACE, "replay", str(log), "--pool", str(tmp_path / "pool")], capture_output=True, text=True,
                       env=clean_env(), timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    n_frames = int(r.stdout.split(" frame(s)")[0].split()[-1])
    recs = ParquetPool(str(tmp_path / "pool")).query()
    assert n_frames >= 10 and len(recs) == n_frames - 1 and f"stored {n_frames - 1} record(s)" in r.stdout, r.stdout
    assert recs.vehicle.unique().tolist() == [RunConfig().vehicle.id] and recs.terminal.sum() == 1
    stock = RunConfig().vehicle.action_spec().stock_action
    assert all(np.array_equal(a, stock) for a in recs.action)             # recorded on the truck's own map: the stock action
    # the stored energy is what the simulator spent over the frames the transitions end in (20 Hz grid, 1.5 s frames)
    first = recs.index[0].tz_convert("UTC").timestamp() - t0             # end of the first transition's first frame
    window = (ch.time_s > first) & (ch.time_s <= first + 1.5 * len(recs))
    sim_wh = float(np.sum(ch.signals[window, 3] * ch.signals[window, 4])) / 50.0 / 3600.0
    assert sim_wh > 1.0 and np.isclose(-recs.reward.sum(), sim_wh, rtol=0.03), (-recs.reward.sum(), sim_wh)
    cfg = tmp_path / "tiny.toml"
    cfg.write_text("[agent]\nhidden_units = [16, 16]\nbatch_size = 4\n")
    r = subprocess.run([TSPACE, "train", "--data", str(tmp_path / "pool"), "--config", str(cfg), "--updates", "5"],
                       capture_output=True, text=True, env=clean_env(), timeout=120)
    assert r.returncode == 0 and f"learned from {len(recs)} record(s) in 1 episode(s)" in r.stdout, (r.stdout, r.stderr[-2000:])


def _hand_written_run_dir(path):
    "A run directory as `tspace run` leaves it: two drives, a summary with the map after the run, history, traces, stock map."
    import json
    import numpy as np, pandas as pd
    from tspace.data.torquemap import TorqueMap
    from tspace.report import save_run_data
    path.mkdir()
    stock = TorqueMap.default()
    after = np.array(stock.table)
    after[3:5] -= 40.0
    row = {"records": 66, "wall_s": 2.0, "speed_rmse_kmh": 0.5, "stock_rmse_kmh": 0.4, "distance_km": 12.0,
           "stock_distance_km": 12.0, "reward_wh": -12000.0, "stock_wh_per_km": 1000.0}
    pd.DataFrame([{**row, "drive": 1, "phase": "train 1", "cycle": "udds", "wh_per_km": 995.0, "change_pct": -0.5},
                  {**row, "drive": 2, "phase": "eval agent", "cycle": "hwfet", "wh_per_km": 1003.0, "change_pct": 0.3}]
                 ).to_csv(path / "drives.csv", index=False)
    (path / "summary.json").write_text(json.dumps({"map_after": after.tolist(), "budget_nm": 250.0}))
    save_run_data(path, [{"episode": 1, "score": 0.5}], {"eval agent": [[t, 40.0, 41.0, 120.0] for t in range(30)]}, stock)
    return path


def test_report_rerenders_the_table_and_plots_of_a_run_directory(tmp_path):
    rd = _hand_written_run_dir(tmp_path / "run")
    r = tspace_cli("report", str(rd))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[1].split() == ["train", "1", "udds", "995.00", "-0.50", "0.50", "12.00", "66"]
    assert lines[2].split() == ["eval", "agent", "hwfet", "1003.00", "0.30", "0.50", "12.00", "66"]
    names = ["saving.png", "learning_curve.png", "torque_change.png", "eval_traces.png"]
    assert [l for l in lines if l.startswith("plot: ")] == [f"plot: {rd / 'plots' / n}" for n in names]
    for n in names:
        png = (rd / "plots" / n).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000, n
    r = tspace_cli("report", str(rd), "--no_plots")
    assert r.returncode == 0 and "plot:" not in r.stdout and "eval agent" in r.stdout


def test_report_of_a_folder_that_is_not_a_run_directory_exits_2(tmp_path):
    r = tspace_cli("report", str(tmp_path))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip() == (f"tspace report: {str(tmp_path)!r} is not a run directory of `tspace run`: "
                                "it has no drives.csv and no summary.json")
    (tmp_path / "drives.csv").write_text("drive\n")
    assert "it has no summary.json" in tspace_cli("report", str(tmp_path)).stderr


def test_collect_then_offline_td3bc_evaluates_on_the_heldout_cycle(tmp_path):
    "tspace collect fills a pool with stock-map drives of the simulator; tspace train --algo td3bc learns from it, evaluates on the held-out cycle and saves a checkpoint that `tspace run --infer` drives with."
    import json
    import numpy as np
    from tspace.agent.dpg import load_agent
    pool = str(tmp_path / "pool")
    r = tspace_cli("collect", "--out", pool, "--behaviour", "stock", "--episodes", "2", "--cycle", "triangle", "--max-steps", "10")
    assert r.returncode == 0 and "collected 20 record(s) in 2 episode(s)" in r.stdout, r.stderr[-2000:]
    cfg = tmp_path / "tiny.toml"
    cfg.write_text("[agent]\nhidden_units = [16, 16]\nbatch_size = 8\n")
    r = subprocess.run([TSPACE, "train", "--data", pool, "--config", str(cfg), "--algo", "td3bc", "--updates", "10", "--eval-every", "5",
                        "--out", str(tmp_path / "ck")], capture_output=True, text=True, env=clean_env(), timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "learned from 20 record(s) in 2 episode(s)" in r.stdout and "states normalised by the dataset" in r.stdout, r.stdout
    evals = [l for l in r.stdout.splitlines() if l.startswith("after ")]
    assert [l.split()[1] for l in evals] == ["5", "10"] and all("held-out hwfet" in l and "stock map" in l for l in evals), r.stdout
    assert "bc_loss" in r.stdout and "no held-out evaluation" not in r.stdout
    agent = load_agent(tmp_path / "ck")
    assert type(agent).__name__ == "TD3BC" and agent.updates == 10
    assert np.abs(agent.state_normalisation[1] - 1).max() > 0.01          # the dataset's statistics, not the identity
    r = subprocess.run([TSPACE, "run", "--config", str(cfg), "--data", str(tmp_path / "data"), "--cycle", "triangle", "--quiet",
                        "--speedup", "50", "--episodes", "1", "--infer", "--checkpoint", str(tmp_path / "ck")],
                       capture_output=True, text=True, env=clean_env(), timeout=170)
    assert r.returncode == 0, r.stderr[-3000:]                            # the offline checkpoint drives the simulated truck
    (run_dir,) = (tmp_path / "data" / "_runs").iterdir()
    assert "-infer-" in run_dir.name and [l.split(",")[1] for l in (run_dir / "drives.csv").read_text().splitlines()[1:]] == ["infer 1"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["agent_from"] == str(tmp_path / "ck") and summary["records_stored"] > 0
