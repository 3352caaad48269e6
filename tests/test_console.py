"What a person sees of `tspace run` on a terminal: a few lines, no INFO, no TensorFlow; the full log in RUN_DIR/tspace.log, and optionally on a socket."
import json, pickle, re, socketserver, struct, subprocess, threading
from pathlib import Path

from cli_helpers import TSPACE, clean_env

TINY = """episodes = 1
seed = 3
[agent]
hidden_units = [16, 16]
batch_size = 8
"""                                   # no log_level: the terminal gets the default (WARNING)

TENSORFLOW_LINE = re.compile(r"tensorflow|absl|oneDNN|cuda|cuInit|^[IWEF]\d{4} ", re.IGNORECASE)

def _run(tmp_path, *more):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    env = clean_env()
    env.pop("TF_CPP_MIN_LOG_LEVEL")        # as a user's shell has it: tspace itself must keep TensorFlow quiet
    return subprocess.run([TSPACE, "run", "--config", str(cfg), "--data", str(tmp_path / "data"), "--cycle", "triangle",
                           "--episodes", "1", "--speedup", "50", *more], capture_output=True, text=True, env=env, timeout=170)

def _run_dir(tmp_path) -> Path:
    (d,) = list((tmp_path / "data" / "_runs").iterdir())
    return d

def test_default_run_is_quiet_and_logs_to_the_run_directory(tmp_path):
    r = _run(tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    terminal = r.stdout.splitlines() + r.stderr.splitlines()
    assert len(terminal) <= 40, "\n".join(terminal)
    assert not [l for l in terminal if " INFO " in l], r.stderr
    assert not [l for l in terminal if TENSORFLOW_LINE.search(l)], r.stderr
    # the plain progress lines (stderr is not a terminal) with each drive's flashes, and the table
    assert "[train 1] triangle  " in r.stderr and "[eval agent] triangle: " in r.stderr, r.stderr
    assert re.search(r"\[train 1\] triangle: .* \d+ flashes \(\d+ superseded\)", r.stderr), r.stderr
    assert "Wh/km" in r.stdout
    log = (_run_dir(tmp_path) / "tspace.log").read_text()
    assert re.search(r" INFO +tspace\.dataflow\.cruncher .* closed: \d+ record", log), log[-2000:]
    assert " INFO    tspace.system.supervisor" in log and "exit code 0" in log
    native = (_run_dir(tmp_path) / "native-stderr.log").read_text()      # TensorFlow's start-up lines went here
    assert "tspace" not in native

class _Listener(socketserver.ThreadingTCPServer):
    "A log viewer as cutelog is one: it takes the length-prefixed pickles of `logging.handlers.SocketHandler` (this test's own process made them)."
    daemon_threads, allow_reuse_address = True, True
    def __init__(self):
        self.records, self.got = [], threading.Event()
        listener = self
        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                while (head := self.rfile.read(4)) and len(head) == 4:
                    listener.records.append(pickle.loads(self.rfile.read(struct.unpack(">L", head)[0])))
                    if "exit code" in str(listener.records[-1].get("msg")): listener.got.set()
        super().__init__(("127.0.0.1", 0), Handler)

def test_log_socket_streams_records_and_log_json_writes_json_lines(tmp_path):
    viewer = _Listener()
    threading.Thread(target=viewer.serve_forever, daemon=True).start()
    try:
        r = _run(tmp_path, "--quiet", "--log-json", "--log-socket", f":{viewer.server_address[1]}")   # dashed, as the issue spells them; host: loopback by default
        assert r.returncode == 0, r.stderr[-3000:]
        assert viewer.got.wait(30), viewer.records[-5:]
    finally:
        viewer.shutdown()
        viewer.server_close()
    names = {rec["name"] for rec in viewer.records}
    assert "tspace.dataflow.cruncher" in names and any(rec["levelname"] == "INFO" for rec in viewer.records), names
    assert any(re.search(r"closed: \d+ record", rec["msg"]) for rec in viewer.records)   # SocketHandler sends the message formatted
    lines = [json.loads(l) for l in (_run_dir(tmp_path) / "tspace.log").read_text().splitlines()]
    assert {"time", "level", "logger", "message"} <= set(lines[0]) and any(l["level"] == "INFO" for l in lines)
    assert not [l for l in r.stderr.splitlines() if " INFO " in l], r.stderr

def test_bad_log_socket_exits_2(tmp_path):
    r = _run(tmp_path, "--log_socket", "localhost:http")
    assert r.returncode == 2 and "HOST:PORT" in r.stderr, r.stderr[-2000:]
