"""The supervisor in a real process: signals, flush callbacks, exit codes and the log.

Each test starts tests/supervised_program.py with the interpreter running pytest, waits for its
"ready" line (printed once its workers have completed a unit of work, so its signal handlers are
installed), and then signals it or lets it fail on its own.
"""
import json, os, selectors, signal, subprocess, sys, time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PROGRAM = HERE / "supervised_program.py"
ROOT = HERE.parent

def start(mode, workdir):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    return subprocess.Popen([sys.executable, str(PROGRAM), mode, str(workdir)], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

def wait_ready(proc, timeout=15.0):
    "Wait for the child's 'ready' line on stdout; fail with its stderr if it does not come."
    sel = selectors.DefaultSelector(); sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sel.select(timeout=max(0.0, deadline - time.monotonic())):
            line = proc.stdout.readline()
            if line.strip() == "ready": return
            if line == "": break  # EOF: the child exited
    proc.kill(); _, err = proc.communicate()
    pytest.fail(f"child never became ready (rc={proc.returncode}); stderr:\n{err}")

def wait_log(workdir, text, timeout=5.0):
    "Wait until a line of the JSON log contains `text` in its message."
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(text in r["message"] for r in read_log(workdir)): return
        time.sleep(0.02)
    pytest.fail(f"{text!r} never appeared in the log")

def read_log(workdir):
    p = workdir / "log.jsonl"
    if not p.exists(): return []
    return [json.loads(l) for l in p.read_text().splitlines() if l.strip()]

def finish(proc, timeout):
    try: out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill(); out, err = proc.communicate()
        pytest.fail(f"child did not exit within {timeout} s; stderr:\n{err}")
    return out, err

def check_units_complete(workdir):
    "The flush wrote every record, and every unit of work that began also ended."
    recs = json.loads((workdir / "flushed.json").read_text())
    begun = {(w, i) for w, i, what in recs if what == "begin"}
    ended = {(w, i) for w, i, what in recs if what == "end"}
    assert begun and begun == ended, f"unfinished units: {sorted(begun - ended)}"
    assert {w for w, _ in ended} == {"crunch", "decoder"}

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_flushes_and_exits_0(tmp_path, sig):
    proc = start("loop", tmp_path)
    wait_ready(proc)
    assert not (tmp_path / "flushed.json").exists()
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, err = finish(proc, timeout=5.0)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, err
    assert elapsed < 5.0, elapsed
    check_units_complete(tmp_path)
    msgs = [r["message"] for r in read_log(tmp_path)]
    assert any(f"stop requested (signal {sig.name})" in m for m in msgs), msgs
    assert not [r for r in read_log(tmp_path) if r["level"] in ("ERROR", "CRITICAL")]

def test_raising_worker_exits_nonzero_with_traceback(tmp_path):
    proc = start("raise", tmp_path)
    _, err = finish(proc, timeout=15.0)  # nobody signals it: it must stop on its own
    assert proc.returncode != 0
    recs = read_log(tmp_path)
    failed = [r for r in recs if r["level"] == "ERROR" and "traceback" in r]
    assert len(failed) == 1, recs
    f = failed[0]
    assert "'decoder'" in f["message"] and f["thread"] == "decoder"
    assert "Traceback (most recent call last)" in f["traceback"]
    assert "ValueError: frame 3 from decoder has 29 samples, expected 30" in f["traceback"]
    # the human-readable stderr carries the same traceback
    assert "worker 'decoder' failed" in err and "ValueError: frame 3 from decoder" in err and "Traceback" in err
    # the other worker was stopped, and the flush still ran with only complete units
    check_units_complete(tmp_path)

def test_second_signal_cuts_the_wait_for_a_stuck_worker(tmp_path):
    "stop_timeout is 10 s, but a second signal makes it stop waiting for the stuck worker; flush still runs."
    proc = start("hang", tmp_path)
    wait_ready(proc)
    proc.send_signal(signal.SIGTERM)
    wait_log(tmp_path, "stop requested (signal SIGTERM)")
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = finish(proc, timeout=5.0)
    assert time.monotonic() - t0 < 3.0
    assert proc.returncode == 1, err
    check_units_complete(tmp_path)
    errors = [r["message"] for r in read_log(tmp_path) if r["level"] == "ERROR"]
    assert any("did not stop" in m and "stuck" in m for m in errors), errors
