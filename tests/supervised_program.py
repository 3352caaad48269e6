"""A small supervised program for tests/test_supervisor.py.

Usage: python supervised_program.py MODE WORKDIR

Two looping workers do units of work (a unit appends a "begin" and, a little later, an "end"
record); a flush callback writes the records to WORKDIR/flushed.json. Logs go as JSON lines to
WORKDIR/log.jsonl and to stderr. "ready" is printed on stdout once both workers completed a
unit (so the signal handlers are installed).

MODE:
  loop   run until a signal arrives
  raise  the "decoder" worker raises after a few units of work
  hang   like loop, plus a worker "stuck" that ignores the stop event (stop_timeout 10 s)
"""
import json, sys, threading, time
from pathlib import Path

from tspace.system.log import get_logger, setup_logging
from tspace.system.supervisor import Supervisor, run_and_exit

mode, workdir = sys.argv[1], Path(sys.argv[2])
setup_logging("INFO", json_file=workdir / "log.jsonl")
log = get_logger("tests.supervised_program")

records, lock = [], threading.Lock()
units = {"crunch": 0, "decoder": 0}
ready = threading.Event()

def make_step(name):
    def step():
        i = units[name]
        with lock: records.append([name, i, "begin"])
        time.sleep(0.05)  # the unit of work
        with lock: records.append([name, i, "end"])
        units[name] = i + 1
        if mode == "raise" and name == "decoder" and i == 3:
            raise ValueError(f"frame {i} from decoder has 29 samples, expected 30")
        if all(units.values()) and not ready.is_set():
            ready.set(); print("ready", flush=True)
    return step

sup = Supervisor("supervised-test", stop_timeout=10.0 if mode == "hang" else 3.0)
sup.add_loop("crunch", make_step("crunch"), interval=0.01)
sup.add_loop("decoder", make_step("decoder"), interval=0.01)
if mode == "hang":
    sup.add_worker("stuck", lambda stop: threading.Event().wait(60))

@sup.on_flush
def flush_records():
    with lock: data = list(records)
    (workdir / "flushed.json").write_text(json.dumps(data))
    log.info("flushed %d records", len(data))

run_and_exit(sup)
