"Virtual VCU and KvaserCAN in one process: signals, bad traffic, a vanishing bus, replay of a recorded log."
import threading, time, uuid
from collections import Counter
import can
import numpy as np
import pandas as pd
import pytest
from tspace.conn.can import CanConfig, open_bus, replay_frames, CanFrameDecoder, LogReading
from tspace.dataflow.kvaser import KvaserCAN
from tspace.sim.ecu import VirtualVCU
from tspace.sim.truck import TruckSim, SIGNALS
from tspace.system.errors import TspaceConnectionError
from servers import wait_until

T0 = 1_700_000_000.0

def _cfg(**kw):
    "A fresh virtual channel; its name ends in a letter: python-can's BLF writer turns a name's trailing digits into its 16-bit channel number."
    return CanConfig(channel=f"t-{uuid.uuid4().hex[:8]}-vcu", **kw)

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
        sent = Counter()
        motion = vcu.codec.db.get_message_by_name("VCU_Motion")
        for i in range(600):                                  # 12 s of driving, junk interleaved
            vcu.step(1)
            if i % 10 == 3:
                ts = T0 + (i + 1) / 50
                # a plausible VCU_Motion with a counter that does not follow the VCU's last one (i): forged
                forged = motion.encode({"VehicleSpeed": 99.0, "AccelPedalPos": 0.9, "BrakePedalPos": 0.0, "Motion_Counter": (i + 100) % 256})
                junk = {"unknown": can.Message(arbitration_id=0x5A5, data=bytes(8), is_extended_id=False, timestamp=ts),
                        "short": can.Message(arbitration_id=0xC8, data=b"\xff\xff", is_extended_id=False, timestamp=ts),
                        "long": can.Message(arbitration_id=0x1A0, data=bytes(12), is_extended_id=False, is_fd=True, timestamp=ts),
                        "error": can.Message(arbitration_id=0xC8, is_error_frame=True, timestamp=ts),
                        "extended": can.Message(arbitration_id=0xC8, data=forged, is_extended_id=True, timestamp=ts),   # 29-bit 200
                        "forged": can.Message(arbitration_id=0xC8, data=forged, is_extended_id=False, timestamp=ts)}
                for kind, m in junk.items(): junk_bus.send(m); sent[kind] += 1
        frames = list(kv.frames(7))
        wait_until(lambda: kv.stats["received"] == 1200 + sum(sent.values()), what="every message counted")
        assert kv.stats["unknown_id"] == sent["unknown"]
        assert kv.stats["wrong_dlc"] == sent["short"] + sent["long"]
        assert kv.stats["garbage"] == sent["error"]
        assert kv.stats["wrong_id_type"] == sent["extended"]
        assert kv.stats["counter_errors"] == sent["forged"]
        assert kv.stats["decoded"] == 1200                    # every genuine frame, nothing else
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
        # with the counter the VCU sends next (100): accepted, so the range check sees it; the VCU's own 100 is then a repeat
        data = bms.encode({"PackCurrent": 0.0, "PackVoltage": 3000.0, "PackStatus_Counter": 100}, strict=False)
        vcu.bus.send(can.Message(arbitration_id=bms.frame_id, data=data, is_extended_id=False, timestamp=T0 + 2.01))
        vcu.step(200)
        frames = list(kv.frames(3))
        assert kv.stats["out_of_range"] == 1 and kv.stats["counter_errors"] == 1
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
        sent, send = [0], vcu.bus.send
        def counted(msg, *a, **kw): sent[0] += 1; return send(msg, *a, **kw)
        vcu.bus.send = counted                              # the VCU is the only sender on this channel
        vcu.step(500)
        live = list(kv.frames(6))
    received = [0]
    def drained():                                          # the notifier hands a message to the writers before `seen`
        while seen.get_message(0) is not None: received[0] += 1
        return received[0] == sent[0]
    wait_until(drained, timeout=60, what=f"the recorder receiving all {sent[0]} messages")
    notifier.stop()                                         # also stops (closes) the writers
    for p in logs:
        dec = CanFrameDecoder.from_config(cfg, 30, 20.0)
        reading = LogReading(p)
        replayed = list(replay_frames(p, decoder=dec, reading=reading))
        assert not reading.damaged and reading.messages == sent[0], (p, reading.summary())
        assert len(replayed) >= len(live), p
        for a, b in zip(live, replayed):
            assert np.abs(a.index.asi8 - b.index.asi8).max() < 2_000, p     # µs-resolution log formats
            np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), atol=1e-3)
        assert dec.stats["unknown_id"] == 0 and dec.stats["undecodable"] == 0 and dec.stats["counter_errors"] == 0
    rec_bus.shutdown(); vcu.bus.shutdown()


def test_reader_stops_on_a_busy_bus():
    "Other ECUs keep talking (200 msg/s of an id tspace does not read): asked to stop, the reader thread ends within 0.5 s."
    cfg = _cfg()
    chatter_bus, done = open_bus(cfg), threading.Event()
    def chatter():
        while not done.is_set():
            chatter_bus.send(can.Message(arbitration_id=0x3C3, data=bytes(8), is_extended_id=False, timestamp=time.time()))
            time.sleep(0.005)                               # pacing of the other ECU, not a wait for a result
    talker = threading.Thread(target=chatter, daemon=True)
    talker.start()
    kv = KvaserCAN(cfg, 30, 20.0).start()
    try:
        wait_until(lambda: kv.stats["unknown_id"] >= 50, what="50 frames of chatter")
        reader = kv._thread
        t0 = time.monotonic()
        kv._stop.set()
        reader.join(0.5)
        assert not reader.is_alive(), f"reader still running {time.monotonic() - t0:.2f} s after stop"
    finally:
        kv.stop(); done.set(); talker.join(2); chatter_bus.shutdown()
