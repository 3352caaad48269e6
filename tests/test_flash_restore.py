"""The stock map back on the VCU however a run ends: `tspace sim` is the truck in its own process on a host-local
udp_multicast bus (its watchdog off, so only tspace's restore can bring the stock map back); a run in another process
flashes the agent's rows, then ends normally, by SIGTERM, or because a worker raised. Afterwards the VCU holds the stock
map (read from this process) and the run's summary records the restore and its read-back."""
import json, signal, socket, subprocess, sys, time
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import TSPACE, clean_env, host_local_bus, truck_config, wait_for_text
from servers import free_port


def _config(tmp_path: Path, group: str, port: int, hmi_kind: str, hmi_port: int = 1883) -> Path:
    "One episode; the VCU's watchdog off, so only tspace's restore can bring the stock map back."
    return truck_config(tmp_path / "truck.toml", group, port, hop_limit=0, hmi_kind=hmi_kind, hmi_port=hmi_port, watchdog_s=0)




@pytest.fixture
def truck(tmp_path):
    "The simulated VCU in its own process; yields (config path, the config, a function that reads the map it holds)."
    from tspace.config.run import load_config
    from tspace.agent.dpg import make_agent
    group, port = host_local_bus()
    hmi_port = free_port()
    cfg_path = _config(tmp_path, group, port, "udp", hmi_port)
    cfg = load_config(str(cfg_path))
    make_agent(cfg.observation_meta(), cfg.agent).save(tmp_path / "agent")
    proc = subprocess.Popen([TSPACE, "sim", "--config", str(cfg_path), "--cycle", "triangle", "--speedup", "2", "--loop"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=clean_env())
    def read_map():
        from tspace.dataflow.kvaser import KvaserCAN
        kv = KvaserCAN(cfg.vehicle.can, 30, 20.0).start()
        try: return kv.read_map()
        finally: kv.stop()
    yield cfg_path, cfg, read_map
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=15)


def _wait_for_actions(tmp_path: Path, proc: subprocess.Popen, n: int = 2, timeout: float = 60.0) -> None:
    "Wait until the run's flash worker took `n` of the agent's requests after the episode's reset (its status.json, written every 0.5 s)."
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for status in (tmp_path / "data" / "_runs").glob("*/status.json"):
            try: queues = {q["name"]: q for q in json.loads(status.read_text())["queues"]}
            except (ValueError, KeyError): continue
            if queues["flash requests"]["gets"] >= n + 1: return
        assert proc.poll() is None, f"the run exited ({proc.returncode}) before the agent flashed"
        time.sleep(0.1)
    raise AssertionError(f"the agent did not flash {n} time(s) within {timeout:g} s")


def _summary(tmp_path: Path) -> dict:
    (rd,) = list((tmp_path / "data" / "_runs").iterdir())
    return json.loads((rd / "summary.json").read_text())


def _check_restored(tmp_path, cfg, read_map, summary):
    from tspace.data.torquemap import TorqueMap
    stock = TorqueMap.from_config(cfg.vehicle.torque_map).table
    assert summary["flash"]["written"] >= 1, summary["flash"]                     # the agent's rows reached the VCU
    rec = summary["restore"]
    assert rec["restored"] and rec["verified"] and rec["max_difference_nm"] <= 0.05 + 1e-9, rec
    assert rec["before_max_difference_nm"] > 0.05, rec         # a learned map was on the VCU until then (beyond the 0.1 Nm wire step)
    assert np.abs(read_map() - stock).max() <= 0.05 + 1e-9                         # what the VCU holds now, read from here


def _run(tmp_path, cfg_path, *extra):
    err = tmp_path / "run.stderr"
    fe = open(err, "w")
    proc = subprocess.Popen([TSPACE, "run", "--config", str(cfg_path), "--data", str(tmp_path / "data"), "--quiet", "--infer",
                             "--checkpoint", str(tmp_path / "agent"), *extra], stdout=subprocess.PIPE, stderr=fe, text=True, env=clean_env())
    return proc, err


def test_restored_after_a_normal_end(tmp_path, truck):
    cfg_path, cfg, read_map = truck
    run, err = _run(tmp_path, cfg_path)
    wait_for_text(err, r"state frames flow", run, timeout=120)
    driver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    send = lambda status: driver.sendto(json.dumps({"status": status}).encode(), ("127.0.0.1", cfg.hmi.port))
    send("begin")
    _wait_for_actions(tmp_path, run)                   # two frames acted on: the episode has a transition to store
    send("end_valid")
    run.communicate(timeout=60)
    assert run.returncode == 0, err.read_text()[-3000:]
    _check_restored(tmp_path, cfg, read_map, _summary(tmp_path))


def test_restored_after_sigterm(tmp_path, truck):
    cfg_path, cfg, read_map = truck
    run, err = _run(tmp_path, cfg_path)
    wait_for_text(err, r"state frames flow", run, timeout=120)
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'{"status": "begin"}', ("127.0.0.1", cfg.hmi.port))
    _wait_for_actions(tmp_path, run)
    run.send_signal(signal.SIGTERM)
    run.communicate(timeout=30)
    assert run.returncode == 0, err.read_text()[-3000:]
    summary = _summary(tmp_path)
    assert summary["stop_reason"] == "signal SIGTERM", summary["stop_reason"]
    _check_restored(tmp_path, cfg, read_map, summary)


def test_restored_after_a_worker_raised(tmp_path, truck):
    cfg_path, cfg, read_map = truck
    err = tmp_path / "run.stderr"
    with open(err, "w") as fe:
        run = subprocess.Popen([sys.executable, str(Path(__file__).parent / "restore_program.py"), str(cfg_path), str(tmp_path / "data"),
                                str(tmp_path / "agent")], stdout=subprocess.PIPE, stderr=fe, text=True, env=clean_env())
        wait_for_text(err, r"state frames flow", run, timeout=120)
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'{"status": "begin"}', ("127.0.0.1", cfg.hmi.port))
        run.communicate(timeout=90)
    assert run.returncode == 1, err.read_text()[-3000:]
    summary = _summary(tmp_path)
    assert any(f.startswith("frames: InjectedFault") for f in summary["failures"]), summary["failures"]
    _check_restored(tmp_path, cfg, read_map, summary)


def test_a_vcu_that_does_not_answer_fails_the_run_loudly(tmp_path):
    "No VCU on the bus: the restore cannot be verified, so the run exits non-zero and says so."
    cfg_path = _config(tmp_path, *host_local_bus(), "dummy")
    from tspace.config.run import load_config
    from tspace.agent.dpg import make_agent
    cfg = load_config(str(cfg_path))
    make_agent(cfg.observation_meta(), cfg.agent).save(tmp_path / "agent")
    run, err = _run(tmp_path, cfg_path)
    wait_for_text(err, r"tspace-run: starting \d+ worker", run, timeout=120)      # the supervisor's signal handlers are in place
    run.send_signal(signal.SIGTERM)
    run.communicate(timeout=60)
    log = err.read_text()
    assert run.returncode == 1, log[-3000:]
    assert "FAILED restore: THE STOCK TORQUE MAP WAS NOT RESTORED" in log, log[-3000:]
    rec = _summary(tmp_path)["restore"]
    assert (rec["restored"], rec["verified"]) == (False, False) and rec["error"], rec
