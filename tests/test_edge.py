"""An Avatar drives a truck served over the network: `tspace serve edge` serves the simulated truck on loopback, and
`tspace run --interface edge` trains on it, flashes its rows through the edge server and stores its records."""
import json, signal, subprocess, sys
import numpy as np
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from cli_helpers import TSPACE, clean_env
from servers import free_port


def test_an_avatar_drives_a_served_simulator_and_stores_its_records(tmp_path):
    from tspace.storage.pool.parquet import ParquetPool
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(f'episodes = 1\nseed = 3\n[agent]\nhidden_units = [16, 16]\nbatch_size = 8\n[dist]\nedge_port = {free_port()}\n')
    server = subprocess.Popen([TSPACE, "serve", "edge", "--config", str(cfg), "--cycle", "triangle", "--speedup", "50"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
    try:
        assert server.stdout.readline().startswith("tspace serve edge: the simulated truck"), server.stderr.read()
        r = subprocess.run([TSPACE, "run", "--interface", "edge", "--config", str(cfg), "--data", str(tmp_path / "data"), "--quiet"],
                           capture_output=True, text=True, env=clean_env(), timeout=170)
        assert r.returncode == 0, r.stderr[-3000:]
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err[-3000:]
    (rd,) = list((tmp_path / "data" / "_runs").iterdir())
    summary = json.loads((rd / "summary.json").read_text())
    with ParquetPool(str(tmp_path / "data")) as pool:
        stored = pool.query()
    assert len(stored) == summary["records_stored"] > 0, (len(stored), summary["records_stored"])
    assert set(stored.vehicle) == {summary["vehicle"]}
    vs = summary["vehicle_stats"]
    assert summary["interface"] == "edge" and vs["hmi"] == "edge" and vs["begin"] >= 1 and vs["end_valid"] >= 1, vs
    assert vs["interface"]["frames"] >= len(stored), vs                          # every stored record came over the edge
    assert summary["flash"]["written"] >= 1 and summary["restore"]["verified"], (summary["flash"], summary["restore"])
    from tspace.data.core import ActionSpec
    from tspace.data.torquemap import TorqueMap
    assert ActionSpec().map_problems(TorqueMap.default().table, np.array(summary["map_after"]), tol_nm=0.05 + 1e-6) == []
    flashes = int(out.split(" flash(es)")[0].rsplit(" ", 1)[-1])
    f = summary["flash"]
    assert flashes == vs["interface"]["flashes"] == f["written"] + f["restores"], (out, f)   # the agent's rows, then the stock map's restore
