"`tspace run` end to end in a subprocess: a short training run, a SIGTERM mid-episode, a worker that fails."
import json, math, re, signal, subprocess, sys, time
from pathlib import Path

import numpy as np

from cli_helpers import TSPACE, clean_env as _env
TINY = """episodes = 2
seed = 3
log_level = "INFO"
[agent]
hidden_units = [16, 16]
batch_size = 8
"""

def _args(tmp_path, *more):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    return [TSPACE, "run", "--config", str(cfg), "--data", str(tmp_path / "data"),
            "--cycle", "triangle", "--quiet", *more]

def _run_dir(tmp_path) -> Path:
    (d,) = list((tmp_path / "data" / "_runs").iterdir())
    return d

def _pool_count(tmp_path) -> int:
    from tspace.storage.pool.parquet import ParquetPool
    return ParquetPool(str(tmp_path / "data")).count()

def _stock_whkm(cycle: str, seed: int) -> float:
    "Independent reference: the stock-map drive simulated sample by sample, as the VCU publishes it."
    from tspace.sim.truck import TruckSim
    sim, e, d = TruckSim(cycle, sample_hz=50.0, seed=seed), 0.0, 0.0
    while not sim.done:
        ch = sim.run(1); e += ch.energy_wh; d += ch.distance_m
    return e / (d / 1000)

def test_run_end_to_end(tmp_path):
    t0 = time.monotonic()
    r = subprocess.run(_args(tmp_path, "--episodes", "2", "--speedup", "50"), capture_output=True, text=True, env=_env(), timeout=170)
    assert r.returncode == 0, r.stderr[-3000:]
    rd = _run_dir(tmp_path)
    summary = json.loads((rd / "summary.json").read_text())
    drives = [l.split(",") for l in (rd / "drives.csv").read_text().splitlines()]
    head, rows = drives[0], drives[1:]
    phases = [row[head.index("phase")] for row in rows]
    assert phases == ["train 1", "train 2", "eval stock", "eval agent"]
    records = [int(row[head.index("records")]) for row in rows]
    # the triangle (22 s) in frames of 1.5 s: at most 14 frames, 13 transitions; a few frames may fall outside begin/end
    assert all(8 <= n <= 13 for n in records), records
    assert _pool_count(tmp_path) == sum(records) == summary["records_stored"]
    # the stock drive through the CAN path meters what the simulator computes on its own for the same seed (seed + 10000)
    stock = float(rows[2][head.index("wh_per_km")])
    assert math.isclose(stock, _stock_whkm("triangle", 3 + 10_000), rel_tol=1e-9)
    assert abs(float(rows[2][head.index("change_pct")])) < 1e-6
    # every map that reached the VCU kept the safety rules: none refused, and the map left behind is safe
    vcu = summary["vehicle_stats"]["vcu"]
    assert vcu["writes"] > 0 and vcu["refused_unsafe"] == 0, summary["vehicle_stats"]
    from tspace.data.core import ActionSpec
    from tspace.data.torquemap import TorqueMap
    assert ActionSpec().map_problems(TorqueMap.default().table, np.array(summary["map_after"]), tol_nm=0.05 + 1e-6) == []
    # a loadable checkpoint that acts in the action bounds
    from tspace.agent.dpg import load_agent
    agent = load_agent(rd / "checkpoint")
    a = agent.act(np.zeros((30, 3), np.float32), explore=False)
    assert a.shape == (4, 17) and np.all(np.abs(a) <= 1)
    for name in ("saving", "learning_curve", "torque_change", "eval_traces"):
        png = (rd / "plots" / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000, name
    assert list((rd / "tensorboard").glob("events.out.tfevents.*"))
    # `tspace report` re-renders the same table and the plots from what the run directory holds
    again = subprocess.run([TSPACE, "report", str(rd)], capture_output=True, text=True, env=_env(), timeout=60)
    assert again.returncode == 0, again.stderr[-3000:]
    table = again.stdout.split("plot: ")[0].strip()
    assert table and table in r.stdout, (table, r.stdout)
    assert again.stdout.count("plot: ") == 4 and all(json.loads((rd / f).read_text()) for f in ("history.json", "traces.json"))
    assert "Wh/km" in r.stdout and str(rd / "checkpoint") in r.stdout
    assert time.monotonic() - t0 < 180

def test_sigterm_mid_episode_stores_completed_episodes(tmp_path):
    err = tmp_path / "stderr.txt"
    with open(err, "w") as fe:
        args = [a for a in _args(tmp_path, "--episodes", "5", "--speedup", "2") if a != "--quiet"]   # the progress lines tell where the drive is
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=fe, text=True, env=_env())
        def inside_second_drive():     # the first episode is stored and the second drive is a quarter done
            text = err.read_text()
            return "closed:" in text and "[train 2] triangle  25%" in text.split("closed:")[-1]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and p.poll() is None and not inside_second_drive(): time.sleep(0.2)
        assert p.poll() is None, err.read_text()[-3000:]
        t = time.monotonic()
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=30)
        took = time.monotonic() - t
    log = err.read_text()
    assert p.returncode == 0, log[-3000:]
    assert took < 5.0, took
    stored = [int(n) for n in re.findall(r"closed: (\d+) record\(s\)", log)]
    assert len(stored) >= 1 and "stopping with an open episode" in log
    assert _pool_count(tmp_path) == sum(stored)
    assert (_run_dir(tmp_path) / "checkpoint").exists()

FAILING_FLASH = """
import sys
from tspace.avatar import Avatar
from tspace.config.run import load_config
from tspace.system.errors import TspaceError
class InjectedFault(TspaceError): pass
def wrap(name, fn):
    if name != "flash": return fn
    flash = fn.__self__                         # the FlashPath: its first write goes out, then it fails
    real = flash.write
    def write(req):
        real(req)
        raise InjectedFault("fault injected into 'flash' after one write")
    flash.write = write
    return fn
sys.exit(Avatar(load_config(sys.argv[1]), episodes=1, cycle="triangle", data=sys.argv[2], progress=False, wrap_worker=wrap).run())
"""

def test_failing_worker_stops_the_run_with_exit_1(tmp_path):
    "A worker that raises (injected through the Avatar's `wrap_worker` seam) stops the whole run with exit code 1, named on stderr."
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    r = subprocess.run([sys.executable, "-c", FAILING_FLASH, str(cfg), str(tmp_path / "data")], capture_output=True, text=True,
                       timeout=120, env=_env())
    assert r.returncode == 1, r.stderr[-3000:]
    assert "worker 'flash' failed: InjectedFault" in r.stderr
    assert "FAILED flash" in r.stderr

def test_a_plot_that_cannot_be_written_fails_the_run(tmp_path):
    "Without matplotlib (a package on PYTHONPATH that refuses to import stands in for it) the run ends with `FAILED plots: ...` and exit 1."
    stub = tmp_path / "no-matplotlib" / "matplotlib"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'matplotlib'\", name='matplotlib')\n")
    r = subprocess.run(_args(tmp_path, "--episodes", "1", "--speedup", "50"), capture_output=True, text=True, timeout=170,
                       env=_env({"PYTHONPATH": str(stub.parent)}))
    assert r.returncode == 1, r.stderr[-3000:]
    assert "FAILED plots: ModuleNotFoundError: No module named 'matplotlib'" in r.stderr.splitlines()
    assert "eval agent" in r.stdout                                  # the table is still printed
    summary = json.loads((_run_dir(tmp_path) / "summary.json").read_text())
    assert summary["exit_code"] == 1 and "plots" not in summary and summary["failures"] == ["plots: ModuleNotFoundError: No module named 'matplotlib'"]

def test_bad_config_exits_2(tmp_path):
    r = subprocess.run(_args(tmp_path, "--interface", "replay"), capture_output=True, text=True, timeout=120, env=_env())
    assert r.returncode == 2 and "vehicle.interface = 'replay'" in r.stderr and "cannot answer an action" in r.stderr

def test_rdpg_run_resumes_and_inference_gets_a_directory_of_its_own(tmp_path):
    "--agent rdpg trains one episode; --resume continues the same run for one more; --infer drives from its checkpoint without touching it."
    def run(*more):
        r = subprocess.run(_args(tmp_path, "--speedup", "50", *more), capture_output=True, text=True, env=_env(), timeout=170)
        assert r.returncode == 0, r.stderr[-3000:]
        return r
    def phases(rd): return [l.split(",")[1] for l in (rd / "drives.csv").read_text().splitlines()[1:]]
    run("--agent", "rdpg", "--episodes", "1")
    rd = _run_dir(tmp_path)
    first = json.loads((rd / "summary.json").read_text())
    assert first["loop"]["episodes"] == 1 and phases(rd) == ["train 1", "eval stock", "eval agent"]
    from tspace.agent.dpg import load_agent
    assert type(load_agent(rd / "checkpoint")).__name__ == "RDPG"
    run("--agent", "rdpg", "--resume", "--episodes", "1")
    assert _run_dir(tmp_path) == rd                                   # the same run, continued
    second = json.loads((rd / "summary.json").read_text())
    assert second["loop"]["episodes"] == 2 and phases(rd) == ["train 2", "eval stock", "eval agent"]
    assert _pool_count(tmp_path) == first["records_stored"] + second["records_stored"]
    kept = {p: p.read_bytes() for p in [rd / "summary.json", rd / "drives.csv", *sorted((rd / "checkpoint").rglob("*"))] if p.is_file()}
    run("--infer", "--episodes", "1")
    (inf,) = [d for d in (tmp_path / "data" / "_runs").iterdir() if d != rd]
    assert "-infer-" in inf.name and phases(inf) == ["infer 1"]
    assert all(p.read_bytes() == b for p, b in kept.items())          # the training run is untouched
    third = json.loads((inf / "summary.json").read_text())
    assert third["agent_from"] == str(rd / "checkpoint") and third["records_stored"] > 0
    assert not (inf / "checkpoint").exists()                          # inference does not learn, so it saves nothing
    assert _pool_count(tmp_path) == first["records_stored"] + second["records_stored"] + third["records_stored"]
