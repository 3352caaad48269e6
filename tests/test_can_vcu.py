"Virtual VCU and KvaserCAN in one process: signals, bad traffic, a vanishing bus, replay of a recorded log."
import time, uuid
import can
import numpy as np
import pandas as pd
import pytest
from tspace.conn.can import CanConfig, open_bus, replay_frames, CanFrameDecoder
from tspace.dataflow.kvaser import KvaserCAN
from tspace.sim.ecu import VirtualVCU
from tspace.sim.truck import TruckSim, SIGNALS
from tspace.system.errors import TspaceConnectionError

T0 = 1_700_000_000.0

def _cfg(**kw): return CanConfig(channel=f"t-{uuid.uuid4().hex[:8]}", **kw)

def _expected(frames, n=1100):
    "Independent reference: an identically seeded TruckSim at 50 Hz, interpolated onto the frames' timestamps."
    ref = TruckSim("triangle", sample_hz=50.0, seed=0).run(n)
    f = pd.concat(frames)
    rel = f.index.asi8 / 1e9 - T0
    return f, {name: np.interp(rel, ref.time_s, ref.signals[:, j]) for j, name in enumerate(SIGNALS)}

def _check(frames, codec):
    f, exp = _expected(frames)
    assert np.unique(np.diff(f.index.asi8)).tolist() == [50_000_000]
    for name in SIGNALS:
        err = np.abs(f[name].to_numpy() - exp[name]).max()
        assert err <= codec.quantum(name) / 2 + 1e-6, (name, err)

def test_signals_through_bus_with_bad_traffic():
    cfg = _cfg()
    junk_bus = open_bus(cfg)
    with KvaserCAN(cfg, 30, 20.0) as kv:
        vcu = VirtualVCU(open_bus(cfg), cfg, start_time=T0)
        sent = {"unknown": 0, "short": 0, "error": 0, "long": 0}
        for i in range(600):                                  # 12 s of driving, junk interleaved
            vcu.step(1)
            if i % 10 == 3:
                ts = T0 + (i + 1) / 50
                junk_bus.send(can.Message(arbitration_id=0x5A5, data=bytes(8), is_extended_id=False, timestamp=ts)); sent["unknown"] += 1
                junk_bus.send(can.Message(arbitration_id=0xC8, data=b"\xff\xff", is_extended_id=False, timestamp=ts)); sent["short"] += 1
                junk_bus.send(can.Message(arbitration_id=0x1A0, data=bytes(12), is_extended_id=False, is_fd=True, timestamp=ts)); sent["long"] += 1
                junk_bus.send(can.Message(arbitration_id=0xC8, is_error_frame=True, timestamp=ts)); sent["error"] += 1
        frames = list(kv.frames(7))
        time.sleep(0.05)
        assert kv.stats["unknown_id"] == sent["unknown"]
        assert kv.stats["undecodable"] == sent["short"] + sent["long"]
        assert kv.stats["garbage"] == sent["error"]
        assert kv.stats["decoded"] == 1200
        assert kv.stats["gaps"] == 0 and kv.stats["out_of_range"] == 0
    _check(frames, vcu.codec)
    junk_bus.shutdown(); vcu.bus.shutdown()

def test_out_of_range_value_counted_and_dropped():
    cfg = _cfg()
    with KvaserCAN(cfg, 30, 20.0) as kv:
        vcu = VirtualVCU(open_bus(cfg), cfg, start_time=T0)
        vcu.step(100)
        # a voltage far above the 1500 V range of the data contract (the DBC field holds up to 3276 V)
        bms = vcu.codec.db.get_message_by_name("BMS_PackStatus")
        data = bms.encode({"PackCurrent": 0.0, "PackVoltage": 3000.0, "PackStatus_Counter": 0}, strict=False)
        vcu.bus.send(can.Message(arbitration_id=bms.frame_id, data=data, is_extended_id=False, timestamp=T0 + 2.01))
        vcu.step(200)
        frames = list(kv.frames(3))
        assert kv.stats["out_of_range"] == 1
    f, exp = _expected(frames)
    assert np.abs(f.voltage.to_numpy() - exp["voltage"]).max() < 0.05   # the bad sample is interpolated over
    vcu.bus.shutdown()

def test_bus_failure_and_silence_raise_connection_error():
    cfg = _cfg(bus_timeout_s=0.3)
    kv = KvaserCAN(cfg, 30, 20.0).start()
    with pytest.raises(TspaceConnectionError, match="no traffic"):
        list(kv.frames(1))
    kv.stop()
    kv = KvaserCAN(cfg, 30, 20.0).start()
    kv.bus.shutdown()                                       # the interface goes away under the reader
    with pytest.raises(TspaceConnectionError, match="failed|no traffic"):
        list(kv.frames(1))
    kv._own_bus = False; kv.stop()

def test_log_written_by_python_can_replays_to_the_same_frames(tmp_path):
    cfg = _cfg()
    rec_bus = open_bus(cfg)
    logs = [tmp_path / "drive.blf", tmp_path / "drive.asc", tmp_path / "drive.log"]
    writers = [can.Logger(str(p)) for p in logs]
    seen = can.BufferedReader()                             # counts what the recorder received
    notifier = can.Notifier(rec_bus, [*writers, seen])
    with KvaserCAN(cfg, 30, 20.0) as kv:
        # first message exactly on a whole second: python-can 4.6's ASC writer formats the trigger-block milliseconds
        # without zero padding (20 ms -> ".20"), which its reader takes for 200 ms; a whole second avoids that quirk
        vcu = VirtualVCU(open_bus(cfg), cfg, start_time=T0 - 0.02)
        vcu.step(500)
        live = list(kv.frames(6))
    received, deadline = 0, time.monotonic() + 10           # wait until the recorder has drained the bus (slow CI)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        n = 0
        while seen.get_message(0) is not None: n += 1
        if n == 0 and received: break
        received += n
    notifier.stop()                                         # also stops (closes) the writers
    for p in logs:
        dec = CanFrameDecoder.from_config(cfg, 30, 20.0)
        replayed = list(replay_frames(p, decoder=dec))
        assert len(replayed) >= len(live), p
        for a, b in zip(live, replayed):
            assert np.abs(a.index.asi8 - b.index.asi8).max() < 2_000, p     # µs-resolution log formats
            np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), atol=1e-3)
        assert dec.stats["unknown_id"] == 0 and dec.stats["undecodable"] == 0
    rec_bus.shutdown(); vcu.bus.shutdown()
