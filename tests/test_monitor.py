"`tspace monitor` beside a real `tspace run`: the run keeps RUN_DIR/status.json current and ends it with `ended: true`."
import json, subprocess, time
from pathlib import Path

from cli_helpers import TSPACE, clean_env

TINY = """seed = 3
[agent]
hidden_units = [16, 16]
batch_size = 8
"""


def _wait_for(what, timeout: float, proc=None):
    "Poll `what()` until it returns something truthy (or `proc` exits, or `timeout` s pass); its last value."
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = what()
        if got or (proc is not None and proc.poll() is not None): return got
        time.sleep(0.1)
    return what()


def _status(run_dir: Path) -> dict | None:
    try: return json.loads((run_dir / "status.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError): return None


def test_a_run_keeps_its_status_and_the_monitor_shows_it(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    data = tmp_path / "data"
    args = [TSPACE, "run", "--config", str(cfg), "--data", str(data), "--cycle", "triangle", "--episodes", "1", "--speedup", "10", "--quiet"]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
    try:
        runs = lambda: [d for d in (data / "_runs").glob("*") if (d / "status.json").exists()] if (data / "_runs").exists() else []
        found = _wait_for(runs, 120, p)
        assert found and p.poll() is None, p.communicate()[1][-3000:] if p.poll() is not None else "no status.json"
        (run_dir,) = found
        live = _wait_for(lambda: (s := _status(run_dir)) and s.get("drive") and s, 60, p)   # a drive in progress
        assert live and not live["ended"] and live["exit_code"] is None, live
        assert live["workers"]["loop"] == "running" and live["workers"]["status"] == "running", live["workers"]
        assert {q["name"] for q in live["queues"]} == {"state frames", "hmi events", "flash requests"}
        assert live["drive"]["cycle"] == "triangle" and live["loop"]["state"] == "ACTIVE", live
        shown = subprocess.run([TSPACE, "monitor", str(run_dir)], capture_output=True, text=True, env=clean_env(), timeout=60)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.startswith(f"run {run_dir}\nrunning, updated") and "drive " in shown.stdout and "loop: ACTIVE" in shown.stdout, shown.stdout
        out, err = p.communicate(timeout=170)
    finally:
        if p.poll() is None: p.kill()
    assert p.returncode == 0, err[-3000:]
    end = _status(run_dir)
    assert end["ended"] is True and end["exit_code"] == 0 and end["failures"] == [], end
    assert end["stop_reason"] == "run finished" and [d["phase"] for d in end["drives"]] == ["train 1", "eval stock", "eval agent"], end
    assert end["loop"]["episode"] == 1 and end["loop"]["best"] is not None, end["loop"]
    shown = subprocess.run([TSPACE, "monitor", "--data", str(data)], capture_output=True, text=True, env=clean_env(), timeout=60)
    assert shown.returncode == 0 and shown.stdout.startswith(f"run {run_dir}\nended: exit code 0 (run finished)"), shown.stdout + shown.stderr
