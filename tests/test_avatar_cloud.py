"`tspace run --interface cloud` end to end in a subprocess: the simulated TBox on a local object store, RemoteCAN, the Cruncher, DDPG, the pool."
import json, math, subprocess, time

import numpy as np

from cli_helpers import TSPACE, clean_env as _env
TINY = """episodes = 2
seed = 3
log_level = "INFO"
[vehicle]
id = "cloud-truck-07"
[agent]
hidden_units = [16, 16]
batch_size = 8
"""

def test_run_cloud_end_to_end(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    data = tmp_path / "data"
    t0 = time.monotonic()
    r = subprocess.run([TSPACE, "run", "--interface", "cloud", "--config", str(cfg), "--data", str(data), "--cycle", "triangle",
                        "--episodes", "2", "--speedup", "10", "--quiet", "--no_plots"],
                       capture_output=True, text=True, env=_env(), timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    (rd,) = list((data / "_runs").iterdir())
    summary = json.loads((rd / "summary.json").read_text())
    assert summary["interface"] == "cloud"
    # the cloud truck's frame: 4 s at 50 Hz; the triangle (22 s) gives 5 full chunks per drive, so at most 4 transitions
    drives = [l.split(",") for l in (rd / "drives.csv").read_text().splitlines()]
    head, rows = drives[0], drives[1:]
    assert [row[head.index("phase")] for row in rows] == ["train 1", "train 2", "eval stock", "eval agent"]
    records = [int(row[head.index("records")]) for row in rows]
    assert all(2 <= n <= math.floor(22 / 4) - 1 for n in records), records
    # the records in the pool: the cloud truck's id, its 200 x 3 states, and the meta of the cloud frame
    from tspace.storage.pool.parquet import ParquetPool
    pool = ParquetPool(str(data))
    df = pool.query()
    assert len(df) == sum(records) == summary["records_stored"]
    assert df.vehicle.unique().tolist() == ["cloud-truck-07"]
    assert np.stack(df.state.tolist()).shape == (len(df), 200, 3)
    assert np.stack(df.next_state.tolist()).shape == (len(df), 200, 3)
    metas = {pool.file_info(str(f))[0] for f in data.rglob("*.parquet") if "_runs" not in f.parts and "_cloud" not in f.parts}
    assert metas and all(m.vehicle == "cloud-truck-07" and m.state.frame_len == 200 and m.state.sample_hz == 50.0 for m in metas)
    # flashing went through the store: every request the TBox saw was acknowledged (applied) and the ack is stored
    base = data / "_cloud" / "tspace" / "cloud-truck-07"
    acks = sorted((base / "acks").glob("*.json"))
    tbox = summary["vehicle_stats"]["tbox"]
    flashed = summary["flash"]["written"] + summary["flash"]["restores"]          # and the stock map's restore at the end
    assert summary["restore"]["verified"] and summary["flash"]["restores"] == 1
    assert tbox["requests"] == tbox["applied"] == len(acks) == flashed >= len(rows) + 1   # at least a reset per drive
    assert all(json.loads(a.read_text())["status"] == "applied" for a in acks)
    assert not list((base / "requests").glob("*.json"))         # handled requests are removed by the TBox
    assert len(list((base / "signals").glob("*.json"))) == tbox["chunks"] == 5 * len(rows)
    # a loadable checkpoint for the cloud truck's observation
    from tspace.agent.dpg import load_agent
    agent = load_agent(rd / "checkpoint")
    a = agent.act(np.zeros((200, 3), np.float32), explore=False)
    assert a.shape == (4, 17) and np.all(np.abs(a) <= 1)
    assert time.monotonic() - t0 < 90

def test_kvaser_interface_without_a_driver_hmi_is_refused_with_a_reason(tmp_path):
    "--interface kvaser on the default config (hmi.kind = sim): a truck tspace does not simulate needs its driver's HMI."
    r = subprocess.run([TSPACE, "run", "--interface", "kvaser", "--data", str(tmp_path / "data"), "--quiet"],
                       capture_output=True, text=True, env=_env(), timeout=120)
    assert r.returncode == 2 and "hmi.kind = 'sim' with vehicle.interface = 'kvaser'" in r.stderr and "set hmi.kind" in r.stderr, r.stderr[-2000:]
