"""The simulated TBox and the cloud interface (RemoteCAN) exchanging frames and flashes through a local folder and through
an S3-compatible server on 127.0.0.1. No MinIO server can be installed where tspace is built and tested, so the S3 endpoint
is `moto_server` (moto's S3-compatible server, a dev requirement), started here on a free port and stopped afterwards."""
import math, os, shutil, socket, subprocess, sys, threading, time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from servers import free_port, wait_until
from tspace.config.cloud import CloudConfig
from tspace.conn.objstore import CloudLayout, ObjectStore, chunk_time, encode_chunk
from tspace.dataflow.cloud import RemoteCAN
from tspace.sim.tbox import TBox
from tspace.sim.truck import TruckSim
from tspace.system.errors import FlashError, TspaceConnectionError

SPEEDUP = 40.0          # a 4 s chunk every 0.1 s of wall time
START = pd.Timestamp("2026-03-29T00:59:40Z")   # 20 s before Berlin's clocks go from 02:00 to 03:00 (01:00 UTC)




def wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before listening on 127.0.0.1:{port}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} does not listen on 127.0.0.1:{port} after {timeout:g} s")


def moto_binary() -> str:
    exe = Path(sys.executable).with_name("moto_server")
    found = str(exe) if exe.exists() else shutil.which("moto_server")
    if not found:
        pytest.fail("moto_server not found next to the Python interpreter or on PATH: the S3 tests need moto's server "
                    "(pip install 'moto[server]', a dev requirement of tspace)", pytrace=False)
    return found


@pytest.fixture(scope="module")
def s3_endpoint():
    "A moto_server on 127.0.0.1 and a free port, for the whole module."
    port = free_port()
    proc = subprocess.Popen([moto_binary(), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(port, proc, "moto_server")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try: proc.wait(10)
        except subprocess.TimeoutExpired: proc.kill(); proc.wait()


@pytest.fixture
def s3_env(monkeypatch):
    "Credentials from the environment only, as in production (moto accepts any)."
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "tspace-test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "tspace-test-secret")


def s3_config(endpoint: str, bucket: str) -> CloudConfig:
    return CloudConfig(url=f"s3://{bucket}", endpoint=endpoint, prefix="fleet/eu", poll_s=0.03, request_timeout_s=10.0,
                       silence_s=10.0, retries=2, backoff_s=0.05, io_timeout_s=5.0)


def exercise(cfg: CloudConfig, vehicle: str):
    """A TBox driving in its threads; the interface reads, flashes, is stopped mid-drive and started again.
    Returns what the checks need: every frame start the consumers got, the store, the layout and the TBox."""
    store = ObjectStore.from_config(cfg).create()
    tbox = TBox.from_config(cfg, vehicle, store=store, speedup=SPEEDUP, loop=True, duration_s=48.0, poll_s=0.03,
                            start_time=START.timestamp(), timezone="Europe/Berlin")     # writes local times across the DST switch
    got, frames = [], []
    with tbox:
        with RemoteCAN.from_vehicle(_vehicle(vehicle), cloud=cfg) as rc:
            for f in rc.frames(3):
                got.append(f.index[0]); frames.append(f)
            stock = tbox.sim.stock_map.table
            table = rc.flash_rows(4, stock[4:8] - 150.0)
            assert np.array_equal(table[4:8], stock[4:8] - 150.0) and np.array_equal(table[8:], stock[8:])
            assert np.array_equal(tbox.sim.torque_map.table, table)
            applied_at = rc.last_ack.at
            with pytest.raises(FlashError) as err:
                rc.flash_rows(13, stock[12:14])
            assert err.value.code == "shape" and "rows 13..14 do not fit the map's speed rows 0..13" in str(err.value)
            assert np.array_equal(rc.read_map(), table)                  # the rejected request changed nothing
        # stopped mid-drive: the TBox keeps uploading; a new interface continues after the stored position
        uploaded = tbox.stats["chunks"]
        wait_until(lambda: tbox.stats["chunks"] > uploaded or tbox.finished.is_set(),
                   what="a chunk uploaded while no interface reads (or the drive's end)")
        with RemoteCAN.from_vehicle(_vehicle(vehicle), cloud=cfg) as rc2:
            for f in rc2.frames(12 - len(got)):
                got.append(f.index[0]); frames.append(f)
        assert tbox.finished.wait(10.0)
    return got, frames, store, tbox, applied_at


def _vehicle(vid):
    from tspace.config.vehicle import VehicleConfig
    return VehicleConfig(id=vid, interface="cloud")


def check_exchange(got, frames, store, tbox, applied_at):
    names = store.list(tbox.layout.signals)
    assert len(names) == 12                                              # 48 s of driving in 4 s chunks
    assert got == [chunk_time(n) for n in names]                         # every chunk exactly once, in order
    f = pd.concat(frames)
    assert list(f.columns) == ["velocity", "thrust", "brake", "current", "voltage"] and str(f.index.tz) == "UTC"
    assert np.unique(np.diff(f.index.asi8)).tolist() == [20_000_000]      # 50 Hz, no gap across chunks or the DST switch
    assert f.index[0] == pd.Timestamp("2026-03-29T00:59:40.020Z")          # START plus one 20 ms sample
    # before the flash the truck drove the stock map: its samples are those of an independent simulator
    ref = TruckSim("triangle", sample_hz=50.0, seed=0).run(200)
    assert np.array_equal(frames[0].to_numpy(), ref.signals)
    assert applied_at.tz is not None and f.index[0] < applied_at <= f.index[-1] + pd.Timedelta(seconds=4)
    assert tbox.stats["applied"] == 1 and tbox.stats["rejected"] == 1


def test_exchange_through_local_folder(tmp_path):
    cfg = CloudConfig(url=f"file://{tmp_path}/cloud", poll_s=0.03, request_timeout_s=10.0, silence_s=10.0, retries=1)
    check_exchange(*exercise(cfg, "cloud-truck-local"))


def test_exchange_through_s3_server(s3_endpoint, s3_env):
    cfg = s3_config(s3_endpoint, "tspace-exchange")
    got, frames, store, tbox, at = exercise(cfg, "cloud-truck-s3")
    check_exchange(got, frames, store, tbox, at)
    assert store.scheme == "s3" and store.stats["writes"] > 0
    # the objects really are in the S3 server, under the documented layout
    import boto3
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="tspace-exchange", Prefix="fleet/eu/cloud-truck-s3/")["Contents"]]
    assert sum(k.startswith("fleet/eu/cloud-truck-s3/signals/") for k in keys) == 12
    assert "fleet/eu/cloud-truck-s3/map.json" in keys and "fleet/eu/cloud-truck-s3/cursors/tspace.json" in keys
    assert sum(k.startswith("fleet/eu/cloud-truck-s3/acks/") for k in keys) == 2
    assert not any(k.startswith("fleet/eu/cloud-truck-s3/requests/") for k in keys)


def test_bad_chunks_counted_on_s3(s3_endpoint, s3_env):
    "Malformed, incomplete and out-of-order chunks among good ones: counted, skipped, and the good ones still come through."
    cfg = s3_config(s3_endpoint, "tspace-bad-chunks")
    store = ObjectStore.from_config(cfg).create()
    lay = CloudLayout(cfg.prefix, "bad-truck")
    t0 = 1_780_000_000.0

    def put(first_s, n=200, name=None):
        ts = pd.to_datetime(np.round((first_s + np.arange(n) / 50.0) * 1e6).astype("int64"), unit="us", utc=True)
        nm, data = encode_chunk("bad-truck", ts.tz_convert("Asia/Kolkata"), np.tile([40.0, 0.3, 0.0, 90.0, 640.0], (n, 1)), 50.0)
        store.write_bytes(lay.chunk(name or nm), data)
        return nm
    good = [put(t0)]
    store.write_bytes(lay.chunk("20260528T202642.000000Z.json"), b'{"format": "tspace.signals/1"')   # truncated upload
    put(t0 + 4, n=120)                                                                                 # incomplete
    good.append(put(t0 + 8))
    put(t0 + 10)                                                                                       # overlaps the previous
    good.append(put(t0 + 16))
    rc = RemoteCAN.from_vehicle(_vehicle("bad-truck"), cloud=cfg)
    assert rc.poll() == 3
    put(t0 + 12)                                                                                       # late upload
    assert rc.poll() == 0
    assert (rc.stats["malformed"], rc.stats["incomplete"], rc.stats["out_of_order"], rc.stats["gaps"]) == (1, 1, 2, 2)
    assert [rc.get_frame(0).index[0] for _ in range(3)] == [chunk_time(n) for n in good]
    assert rc.get_frame(0) is None


def test_rejected_and_unanswered_requests_on_s3(s3_endpoint, s3_env):
    cfg = s3_config(s3_endpoint, "tspace-flash")
    store = ObjectStore.from_config(cfg).create()
    tbox = TBox.from_config(cfg, "flash-truck", store=store, speedup=math.inf, poll_s=0.02)
    tbox.upload_chunk()
    rc = RemoteCAN.from_vehicle(_vehicle("flash-truck"), cloud=cfg)
    rc.ack_poll_s = 0.02
    with tbox.start(drive=False):
        with pytest.raises(FlashError) as err:
            rc.flash_rows(0, np.full((4, 17), -900.0))
        assert err.value.code == "out_of_range"
        assert "the TBox of flash-truck rejected torque request" in str(err.value)
        assert "torque -900..-900 Nm outside the truck's -800..1500 Nm" in str(err.value)
        tbox.inhibit_writes = True
        with pytest.raises(FlashError, match="writes inhibited") as err:
            rc.flash_rows(0, tbox.sim.stock_map.table[:4])
        assert err.value.code == "inhibited"
    assert np.array_equal(tbox.sim.torque_map.table, tbox.sim.stock_map.table)
    rc.request_timeout_s = 0.3                                           # no TBox serving any more
    with pytest.raises(FlashError, match="no acknowledgement") as err:
        rc.flash_rows(0, tbox.sim.stock_map.table[:4])
    assert err.value.code == "timeout" and store.list(rc.layout.requests) == []   # withdrawn


def test_store_outage_is_survived_and_reported(tmp_path):
    "A store that is unreachable for a while: polls are counted as failed and continue; a long silence is reported."
    cfg = CloudConfig(url=f"file://{tmp_path}/cloud", poll_s=0.02, silence_s=0.5, retries=1, backoff_s=0.01)
    store = ObjectStore.from_config(cfg).create()
    tbox = TBox.from_config(cfg, "outage-truck", store=store, speedup=math.inf, start_time=1_780_000_000.0)
    tbox.upload_chunk()
    real_ls, down = store.fs.ls, threading.Event()
    def ls(*a, **k):
        if down.is_set(): raise ConnectionRefusedError("store unreachable")
        return real_ls(*a, **k)
    store.fs.ls = ls
    with RemoteCAN(store, "outage-truck", poll_s=0.02, silence_s=0.5) as rc:
        assert len(list(rc.frames(1))) == 1
        down.set()
        wait_until(lambda: rc.stats["poll_errors"] >= 2, what="two failed polls of the unreachable store")
        tbox.upload_chunk(); down.clear()
        assert len(list(rc.frames(1))) == 1                               # picked up once the store is back
        with pytest.raises(TspaceConnectionError, match="no new chunk for 0.5 s"):
            next(rc.frames(1))


def run_cli(*args, env=None, timeout=60):
    "`tspace sim --tbox ...` through the `tspace` entry point (`sim` runs the TBox when --tbox is given)."
    boot = "import sys; from tspace.cli.main import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", boot, "sim", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_cli_sim_tbox_local_and_s3(tmp_path, s3_endpoint, s3_env, capsys):
    out = run_cli("--tbox", f"file://{tmp_path}/cloud", "--speedup", "inf", "--vehicle", "cli-truck")
    assert out.returncode == 0, out.stderr
    assert "6 chunk(s) uploaded (1 short, 0 not uploaded)" in out.stdout, out.stdout     # 22 s triangle: 5 x 4 s + 2 s
    store = ObjectStore(f"file://{tmp_path}/cloud")
    assert len(store.list("tspace/cli-truck/signals")) == 6 and store.read_json("tspace/cli-truck/map.json") is not None
    # in this process (s3fs is loaded already): the same command against the S3 server, credentials from the environment
    from tspace.cli.main import main
    assert main(["sim", "--tbox", "s3://tspace-cli", "--endpoint", s3_endpoint, "--speedup", "inf",
                 "--duration", "8", "--vehicle", "cli-s3"]) == 0
    assert "2 chunk(s) uploaded (0 short" in capsys.readouterr().out
    s3 = ObjectStore("s3://tspace-cli", endpoint=s3_endpoint)
    assert len(s3.list("tspace/cli-s3/signals")) == 2
    assert main(["sim", "--tbox", "ftp://nowhere/x"]) == 2
    err = capsys.readouterr().err
    assert "vehicle.cloud.url = 'ftp://nowhere/x'" in err and "scheme 'ftp' is not supported" in err, err
