"""No input from outside stops a worker (issue 19): datagrams, MQTT payloads, object-store chunks and config files that
would make a parser raise anything but the project's own error are refused with a `DecodeError`/`ConfigError` naming the
source, counted, and the worker goes on. The property-based tests feed each parser arbitrary bytes and JSON-like
structures: nothing but a `TspaceError` may come out."""
import json, socket, threading
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings, strategies as st

from cli_helpers import TSPACE, clean_env
from servers import Mosquitto, free_port
from tspace.config.hmi import HMIConfig
from tspace.config.vehicle import VehicleConfig
from tspace.conn.mqtt import MqttHMI, parse_hmi_payload
from tspace.conn.objstore import CloudLayout, ObjectStore, decode_chunk, encode_chunk
from tspace.conn.udp import parse_datagram
from tspace.dataflow.cloud import RemoteCAN
from tspace.dataflow.external import ExternalVehicle
from tspace.system.errors import TspaceError

HUGE = b"9" * 400                                                     # OverflowError in math.isfinite / float()
DEEP = b"[" * 30_000 + b"]" * 30_000                                  # RecursionError in json.loads
BAD_JSON = [
    b'{"data": {"velocity": ' + HUGE + b', "pedal": 0, "brake_pressure": 0, "A": 0, "V": 0}}',
    DEEP,
    b'{"data": ' + b'{"a": ' * 20_000 + b"1" + b"}" * 20_001 + b"}",
    b'{"status": "begin", "at": ' + HUGE + b"}",
    b'{"status": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b"\xff\xfe\x00garbage",
    b'{"data": {"velocity": 1e400, "pedal": 0, "brake_pressure": 0, "A": 0, "V": 0}}',
    b"x" * 70_000,
]
FIT_UDP = [d for d in BAD_JSON if len(d) <= 65_000]                   # the rest cannot be one UDP datagram


def test_hmi_worker_keeps_running_and_counts_bad_datagrams():
    "The `hmi` worker of a truck with a UDP HMI: the issue's datagrams are counted, and begin/end/exit after them still arrive."
    port = free_port()
    events, exits = [], []
    ev = ExternalVehicle(VehicleConfig(interface="kvaser"), HMIConfig(kind="udp", port=port), SimpleNamespace(put=events.append),
                         on_exit=lambda: exits.append(True))
    worker = threading.Thread(target=ev.hmi_loop, args=(threading.Event(),), name="hmi")
    failed = []
    worker.run = lambda f=worker.run: _catch(f, failed)
    worker.start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        tx.sendto(b'{"status": "begin"}', ("127.0.0.1", port))
        for d in FIT_UDP: tx.sendto(d, ("127.0.0.1", port))
        tx.sendto(b'{"status": "end_valid"}', ("127.0.0.1", port))
        tx.sendto(b'{"status": "exit"}', ("127.0.0.1", port))
    worker.join(20)
    ev.hmi.close()
    assert not worker.is_alive() and failed == [], failed
    assert events == [("begin", None), ("end_valid", None), ("exit", None)] and exits == [True]
    assert ev.stats()["source_malformed"] == len(FIT_UDP)


def _catch(run, failed):
    try: run()
    except BaseException as e: failed.append(f"{type(e).__name__}: {e}")


def test_mqtt_hmi_keeps_running_and_counts_bad_payloads(tmp_path):
    "The same payloads through a real broker: counted as malformed; paho's thread and the HMI source go on."
    b = Mosquitto(tmp_path / "mosquitto").start()
    try:
        cfg = HMIConfig(kind="mqtt", host="127.0.0.1", port=b.port)
        with MqttHMI(cfg, "truck-x") as hmi, MqttHMI(cfg, "truck-x") as app:
            for d in BAD_JSON: app.client.publish(app.topic, d, qos=1).wait_for_publish(5)
            app.publish("begin"); app.publish("exit")
            got = [s for s, _ in hmi.messages()]
    finally: b.stop()
    assert got == ["begin", "exit"]
    assert hmi.stats["malformed"] == len(BAD_JSON)


def _chunk(vehicle, first_s, n=200):
    ts = pd.to_datetime(np.round((first_s + np.arange(n) / 50.0) * 1e6).astype("int64"), unit="us", utc=True)
    return encode_chunk(vehicle, ts, np.tile([40.0, 0.3, 0.0, 90.0, 640.0], (n, 1)), 50.0)


def test_garbage_chunks_are_counted_and_skipped(tmp_path):
    "Chunks of random bytes, deep JSON, huge numbers, wrong types: each is a counted 'malformed' naming the key; good ones still come."
    store = ObjectStore(f"file://{tmp_path}/bucket").create()
    lay = CloudLayout("tspace", "junk-truck")
    t0 = 1_780_000_000.0
    good = []
    name, data = _chunk("junk-truck", t0)
    store.write_bytes(lay.chunk(name), data); good.append(name)
    doc = json.loads(data)
    bad = [bytes(range(256)) * 4, DEEP, json.dumps({**doc, "sample_hz": 10 ** 400}).encode(),
           json.dumps({**doc, "seq": {"a": [1]}, "signals": {**doc["signals"], "velocity": [10 ** 300] * 200}}).encode(),
           json.dumps({**doc, "timestamps": ["9999-99-99T99:99:99Z"] * 200}).encode(),
           json.dumps({**doc, "timestamps": [10 ** 400] * 200}).encode().replace(b'"', b""), data.replace(b"[", b"{", 3)]
    for i, d in enumerate(bad):
        store.write_bytes(lay.chunk(_chunk("junk-truck", t0 + 4 + i)[0]), d)
    name, data = _chunk("junk-truck", t0 + 8 + len(bad))
    store.write_bytes(lay.chunk(name), data); good.append(name)
    rc = RemoteCAN(store, "junk-truck")
    assert rc.poll() == 2
    assert rc.stats["malformed"] == len(bad) and rc.stats["chunks"] == 2
    assert rc.last_bad.startswith("malformed: chunk ") and ".json" in rc.last_bad


# ---- config files: `tspace config check` --------------------------------------------------------------------------------------

def _check(tmp_path, content: bytes, name="bad.toml"):
    import subprocess
    f = tmp_path / name
    f.write_bytes(content)
    r = subprocess.run([TSPACE, "config", "check", str(f)], capture_output=True, text=True, env=clean_env(), timeout=120)
    return r, str(f)


@pytest.mark.parametrize("content,reason", [
    (bytes(range(256)) * 8, "not UTF-8 text"),
    ('[vehicle]\nid = "Lkw-Müller"\n'.encode("latin-1"), "not UTF-8 text"),
    (b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested 5000 deep"),
    (b"x = " + b"{a = " * 5000 + b"1" + b"}" * 5000 + b"\n", "nested 5000 deep"),
    (b"# padding\n" * 120_000, "larger than"),
], ids=["binary", "latin-1", "deep-array", "deep-inline-table", "1.2-MB"])
def test_config_check_refuses_undecodable_files_in_one_line(tmp_path, content, reason):
    r, f = _check(tmp_path, content)
    assert r.returncode == 2, r
    assert "Traceback" not in r.stderr and len(r.stderr) < 1000, r.stderr[-2000:]
    assert r.stderr.startswith(f"tspace config check: {f}: ") and reason in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_config_check_refuses_inf_and_nan_and_bounds_the_problems(tmp_path):
    r, f = _check(tmp_path, b"[vehicle.physics]\nmass_kg = nan\nmotor_peak_torque_nm = inf\n[agent]\nnoise_sigma = inf\n")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    for key in ("vehicle.physics.mass_kg = nan", "vehicle.physics.motor_peak_torque_nm = inf", "agent.noise_sigma = inf"):
        assert f"{key}: Input should be a finite number" in r.stderr, (key, r.stderr)
    assert "80000" not in r.stderr
    r, f = _check(tmp_path, "".join(f"k{i} = 1\n" for i in range(50_000)).encode())
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("unknown key") == 20 and "... and 49980 more" in r.stderr, r.stderr[-500:]
    assert len(r.stderr) < 5000


# ---- property-based: nothing but the project's own errors ---------------------------------------------------------------------

NUMBERS = st.integers() | st.integers(min_value=10 ** 300, max_value=10 ** 400) | st.floats()
JSON_LIKE = st.recursive(st.none() | st.booleans() | NUMBERS | st.text(max_size=20),
                         lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
                         max_leaves=40)
HMI_LIKE = st.fixed_dictionaries({}, optional={"status": JSON_LIKE | st.sampled_from(["begin", "exit"]), "at": JSON_LIKE,
                                               "id": JSON_LIKE, "data": JSON_LIKE | st.fixed_dictionaries(
                                                   {k: JSON_LIKE | st.floats() for k in ("velocity", "pedal", "brake_pressure", "A", "V")})})
NESTED = st.builds(lambda n, open_, close: open_ * n + b"1" + close * n, st.integers(0, 40_000),
                   st.sampled_from([b"[", b'{"a":', b'{"data":']), st.sampled_from([b"]", b"}"]))
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _only_own_errors(parse, raw):
    try: parse(raw)
    except TspaceError: pass


@PROPERTY
@given(st.binary(max_size=300) | NESTED | JSON_LIKE.map(lambda d: json.dumps(d).encode()) | HMI_LIKE.map(lambda d: json.dumps(d).encode()))
def test_hmi_parsers_raise_only_project_errors(raw):
    _only_own_errors(parse_datagram, raw)
    _only_own_errors(parse_hmi_payload, raw)


def _chunk_like(doc, changes):
    return json.dumps({**doc, **changes}).encode()


_GOOD_CHUNK = json.loads(_chunk("prop-truck", 1_780_000_000.0, n=4)[1])


@PROPERTY
@given(st.binary(max_size=300) | NESTED | JSON_LIKE.map(lambda d: json.dumps(d).encode())
       | st.dictionaries(st.sampled_from(sorted(_GOOD_CHUNK)), JSON_LIKE, max_size=3).map(lambda c: _chunk_like(_GOOD_CHUNK, c))
       | st.dictionaries(st.sampled_from(sorted(_GOOD_CHUNK["signals"])), JSON_LIKE | st.lists(NUMBERS, min_size=4, max_size=4),
                         max_size=3).map(lambda c: _chunk_like(_GOOD_CHUNK, {"signals": {**_GOOD_CHUNK["signals"], **c}})))
def test_chunk_decoder_raises_only_project_errors(raw):
    _only_own_errors(decode_chunk, raw)


TOML_LIKE = st.dictionaries(st.sampled_from(["vehicle", "agent", "hmi", "loop", "site", "storage", "episodes", "x"]),
                            st.dictionaries(st.sampled_from(["id", "physics", "gamma", "kind", "port", "mass_kg", "y"]),
                                            NUMBERS | st.text(max_size=10) | st.booleans()
                                            | st.dictionaries(st.text(max_size=8), st.floats() | st.integers(), max_size=3), max_size=4)
                            | st.integers() | st.floats(), max_size=4)


@PROPERTY
@given(raw=st.binary(max_size=300) | TOML_LIKE.map(lambda d: tomli_w.dumps(d).encode()))
def test_config_loader_raises_only_project_errors(raw, tmp_path_factory):
    from tspace.config.run import load_config
    f = tmp_path_factory.mktemp("cfg") / "c.toml"
    f.write_bytes(raw)
    _only_own_errors(load_config, f)
