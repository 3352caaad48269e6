"""`tspace run` with a truck tspace does not simulate. `tspace sim` in its own process is the truck on a udp_multicast bus;
`tspace run` in another process flashes its VCU over UDS across processes and learns from the episodes the driver marks.
`--interface kvaser`: the signals from the bus, the driver's begin/end through a real mosquitto broker. `--interface udp`:
the signals and the driver's statuses as a local CAN bridge's JSON datagrams (`tspace sim --bridge`)."""
import json, re, signal, socket, subprocess, time
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import HOST_ONLY_ENV, TSPACE, clean_env, host_local_bus, truck_config, wait_for_text as _wait_for
from servers import Mosquitto


def _config(tmp_path: Path, group: str, port: int, hmi_port: int, hmi_kind: str = "mqtt", interface: str = "kvaser") -> Path:
    return truck_config(tmp_path / "truck.toml", group, port, hop_limit=0, hmi_kind=hmi_kind, hmi_port=hmi_port, interface=interface,
                        episodes=2, agent={"hidden_units": [16, 16], "batch_size": 8})




@pytest.mark.parametrize("interface", ["kvaser", "udp"])
def test_run_on_a_truck_of_its_own(tmp_path, interface):
    from tspace.config.run import load_config
    from tspace.conn.mqtt import MqttHMI
    from servers import free_port
    group, port = host_local_bus()
    sim_args = [TSPACE, "sim", "--bus", "udp_multicast", "--channel", group, "--port", str(port), "--cycle", "triangle", "--speedup", "2", "--loop"]
    broker = app = None
    if interface == "kvaser":                             # the driver's app on MQTT
        broker = Mosquitto(tmp_path / "mosquitto").start()
        cfg_path = _config(tmp_path, group, port, broker.port)
        cfg = load_config(str(cfg_path))
        app = MqttHMI(cfg.hmi, cfg.vehicle.id).connect()
        send_status = app.publish
    else:                                                 # the bridge forwards the signals and the driver's buttons
        bridge_port = free_port()
        cfg_path = _config(tmp_path, group, port, bridge_port, hmi_kind="udp", interface="udp")
        sim_args += ["--bridge", f"127.0.0.1:{bridge_port}"]
        buttons = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        send_status = lambda status: buttons.sendto(json.dumps({"status": status}).encode(), ("127.0.0.1", bridge_port))
    truck = subprocess.Popen(sim_args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=clean_env(HOST_ONLY_ENV))
    err = tmp_path / "run.stderr"
    try:
        with open(err, "w") as fe:
            run = subprocess.Popen([TSPACE, "run", "--config", str(cfg_path), "--data", str(tmp_path / "data"), "--quiet"],
                                   stdout=subprocess.PIPE, stderr=fe, text=True, env=clean_env())
            at = _wait_for(err, r"episodes from the (mqtt|udp) HMI", run)
            at = _wait_for(err, r"state frames flow", run, after=at)   # the reader and the Cruncher are up
            for i in range(2):                                # the driver marks two episodes of 9 s
                send_status("begin")
                time.sleep(9.0)                               # the driver drives for 9 s: the episode's length, not a wait
                send_status("end_valid")
                at = _wait_for(err, r"closed: \d+ record", run, after=at)
            out, _ = run.communicate(timeout=90)
    finally:
        truck.send_signal(signal.SIGTERM)
        truck_out, _ = truck.communicate(timeout=15)
        if app is not None: app.close()
        if broker is not None: broker.stop()
    log = err.read_text()
    assert run.returncode == 0, log[-3000:]
    (rd,) = list((tmp_path / "data" / "_runs").iterdir())
    summary = json.loads((rd / "summary.json").read_text())
    assert summary["interface"] == interface
    hmi = summary["vehicle_stats"]
    assert (hmi["hmi"], hmi["begin"], hmi["end_valid"]) == ("mqtt" if interface == "kvaser" else "udp", 2, 2), hmi
    if interface == "udp":                                # the frames came from the bridge's datagrams, none malformed
        assert hmi["source_samples"] > 0 and hmi.get("source_malformed", 0) == 0, hmi
        assert summary["vehicle_stats"]["interface"]["frames"] > 0
    drives = [l.split(",") for l in (rd / "drives.csv").read_text().splitlines()]
    head, rows = drives[0], drives[1:]
    assert [r[head.index("phase")] for r in rows] == ["train 1", "train 2"]      # no held-out evaluation without a simulator
    records = [int(r[head.index("records")]) for r in rows]
    # 9 s of wall time in frames of 1.5 s (udp_multicast stamps on receipt): at most 6 frames, 5 transitions
    assert all(2 <= n <= 6 for n in records), records
    from tspace.storage.pool.parquet import ParquetPool
    pool = ParquetPool(str(tmp_path / "data"))
    assert pool.count() == sum(records) == summary["records_stored"]
    # the table's energy is what the pool holds: Wh/km x km = -(sum of the episode's stored rewards), episode by episode
    stored = pool.query().groupby("episode_start").reward.sum().sort_index().to_numpy()
    for r, reward in zip(rows, stored, strict=True):
        km, whkm = float(r[head.index("distance_km")]), float(r[head.index("wh_per_km")])
        assert 0 < km < 16.3 / 3600 * 9.5, km                                  # never faster than the triangle's 16.2 km/h
        assert np.isclose(whkm * km, -reward, rtol=1e-5), (whkm, km, reward)   # may be negative: braking regenerates
    # the agent's rows really reached the VCU in the other process, and the map was read back at the end
    writes = int(re.search(r"(\d+) write\(s\)", truck_out).group(1))
    assert writes >= 1 and summary["flash"]["written"] >= 1, (truck_out[-500:], summary["flash"])
    assert np.asarray(summary["map_after"]).shape == (14, 17)
    from tspace.agent.dpg import load_agent
    a = load_agent(rd / "checkpoint").act(np.zeros((30, 3), np.float32), explore=False)
    assert a.shape == (4, 17) and np.all(np.abs(a) <= 1)
    assert (rd / "plots" / "saving.png").read_bytes()[:4] == b"\x89PNG"
    assert "driver" in out and str(rd / "checkpoint") in out


def test_no_driver_hmi_exits_2(tmp_path):
    cfg_path = _config(tmp_path, "239.1.2.3", 40000, 1883, hmi_kind="sim")
    r = subprocess.run([TSPACE, "run", "--config", str(cfg_path), "--data", str(tmp_path / "data"), "--quiet"],
                       capture_output=True, text=True, timeout=120, env=clean_env())
    assert r.returncode == 2 and "hmi.kind = 'sim' with vehicle.interface = 'kvaser'" in r.stderr, r.stderr[-2000:]
    cfg_path = _config(tmp_path, "239.1.2.3", 40000, 1883, hmi_kind="mqtt", interface="udp")
    r = subprocess.run([TSPACE, "run", "--config", str(cfg_path), "--data", str(tmp_path / "data"), "--quiet"],
                       capture_output=True, text=True, timeout=120, env=clean_env())
    assert r.returncode == 2 and "hmi.kind = 'mqtt' with vehicle.interface = 'udp'" in r.stderr, r.stderr[-2000:]


def test_kvaser_with_no_broker_exits_2_naming_it(tmp_path):
    from servers import free_port
    port = free_port()                                    # nothing listens there
    cfg_path = _config(tmp_path, "239.1.2.4", 40001, port)
    r = subprocess.run([TSPACE, "run", "--config", str(cfg_path), "--data", str(tmp_path / "data"), "--quiet"],
                       capture_output=True, text=True, timeout=120, env=clean_env())
    assert r.returncode == 2 and f"MQTT broker 127.0.0.1:{port}" in r.stderr, r.stderr[-2000:]


def test_inference_with_a_dummy_hmi_acts_and_flashes_until_sigterm(tmp_path):
    "--infer with hmi.kind = dummy: the agent of a checkpoint acts on the truck's frames and its rows reach the VCU; SIGTERM ends it."
    from tspace.config.run import load_config
    from tspace.agent.dpg import make_agent
    group, port = host_local_bus()
    cfg_path = _config(tmp_path, group, port, 1883, hmi_kind="dummy")
    cfg = load_config(str(cfg_path))
    make_agent(cfg.observation_meta(), cfg.agent).save(tmp_path / "agent")
    truck = subprocess.Popen([TSPACE, "sim", "--bus", "udp_multicast", "--channel", group, "--port", str(port), "--cycle", "triangle",
                              "--speedup", "2", "--loop"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=clean_env(HOST_ONLY_ENV))
    err = tmp_path / "run.stderr"
    try:
        with open(err, "w") as fe:
            run = subprocess.Popen([TSPACE, "run", "--config", str(cfg_path), "--data", str(tmp_path / "data"), "--quiet", "--infer",
                                    "--checkpoint", str(tmp_path / "agent")], stdout=subprocess.PIPE, stderr=fe, text=True, env=clean_env())
            at = _wait_for(err, r"episodes from the dummy HMI", run)
            _wait_for(err, r"first torque rows written", run, after=at)   # torque rows reached the VCU
            assert run.poll() is None, err.read_text()[-3000:]
            t = time.monotonic()
            run.send_signal(signal.SIGTERM)
            run.communicate(timeout=30)
            took = time.monotonic() - t
    finally:
        truck.send_signal(signal.SIGTERM)
        truck_out, _ = truck.communicate(timeout=15)
    assert run.returncode == 0 and took < 5.0, (run.returncode, took, err.read_text()[-3000:])
    (rd,) = list((tmp_path / "data" / "_runs").iterdir())
    summary = json.loads((rd / "summary.json").read_text())
    assert summary["flash"]["written"] >= 1 and summary["records_stored"] == 0, summary["flash"]
    assert int(re.search(r"(\d+) write\(s\)", truck_out).group(1)) >= 1, truck_out[-500:]
