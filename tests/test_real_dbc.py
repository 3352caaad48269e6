"""A production DBC that nobody in tspace wrote: commaai/opendbc's Tesla Model 3 party bus (tests/data/opendbc, MIT) for the
motion signals, tspace's own truck.dbc for the pack, on one bus. A drive is encoded with cantools directly (not with
tspace's encoder), written to a CAN log, replayed, and the decoded frames are checked against the drive within the DBCs'
quantisation; noise of the kinds a real bus carries is counted and never becomes data."""
from collections import Counter
from pathlib import Path
import can
import numpy as np
import pandas as pd
import pytest
from tspace.conn.can import CanConfig, CanFrameDecoder, SignalCodec, load_dbc, replay_frames
from tspace.config.core import resource_path
from tspace.sim.truck import TruckSim, SIGNALS

TESLA = Path(__file__).parent / "data" / "opendbc" / "tesla_model3_party.dbc"
T0, HZ, N = 1_700_000_000.0, 50.0, 1500                     # 30 s of driving at 50 Hz

def _config() -> CanConfig:
    return CanConfig(dbc=[str(TESLA), "truck.dbc"], signals={
        "velocity": {"signal": "ESP_vehicleSpeed", "unit": "kph", "dbc": TESLA.name},    # the file name is enough
        "thrust": {"signal": "DI_accelPedalPos", "unit": "%"},
        "brake": {"signal": "DI_brakePedalState", "choices": {"OFF": 0.0, "ON": 1.0}},     # INVALID: rejected
        "PackCurrent": "current", "PackVoltage": "voltage"},
        messages={"DI_systemStatus": {"counter": "DI_systemStatusCounter", "checksum": "DI_systemStatusChecksum", "checksum_fn": "tesla"},
                  "ESP_B": {"counter": "ESP_wheelRotationCounter", "checksum": "ESP_wheelRotationChecksum", "checksum_fn": "tesla"},
                  "BMS_PackStatus": {"counter": "PackStatus_Counter"}})

def tesla_checksum(address: int, data: bytes, checksum_byte: int) -> int:
    "opendbc's tesla_checksum: the id's two low bytes plus every data byte but the checksum's, modulo 256."
    return ((address & 0xFF) + ((address >> 8) & 0xFF) + sum(b for i, b in enumerate(data) if i != checksum_byte)) & 0xFF

def _drive():
    "The simulator's drive (speed, pedals, pack) and its messages, encoded with cantools from the two DBC files."
    ref = TruckSim("triangle", sample_hz=HZ, seed=0).run(N)
    tesla, truck = load_dbc(TESLA), load_dbc(resource_path("truck.dbc"))
    esp, di, bms = tesla.get_message_by_name("ESP_B"), tesla.get_message_by_name("DI_systemStatus"), truck.get_message_by_name("BMS_PackStatus")
    msgs, brake_state = [], []
    for i, (t, (v, thrust, brake, current, voltage)) in enumerate(zip(ref.time_s, ref.signals.tolist())):
        ts = T0 + float(t)
        state = 1 if brake > 0.05 else 0                    # the switch closes with the pedal
        brake_state.append(state)
        e = {s.name: 0 for s in esp.signals} | {"ESP_vehicleSpeed": v, "ESP_wheelRotationCounter": i % 16}
        d = {s.name: 0 for s in di.signals} | {"DI_accelPedalPos": thrust * 100.0, "DI_brakePedalState": state,
                                              "DI_systemStatusCounter": i % 16}
        for m, vals, chk in ((esp, e, 7), (di, d, 0)):
            data = bytearray(m.encode(vals))
            data[chk] = tesla_checksum(m.frame_id, data, chk)
            msgs.append(can.Message(arbitration_id=m.frame_id, data=bytes(data), is_extended_id=False, timestamp=ts))
        b = bms.encode({"PackCurrent": current, "PackVoltage": voltage, "PackStatus_Counter": i % 256})
        msgs.append(can.Message(arbitration_id=bms.frame_id, data=b, is_extended_id=False, timestamp=ts + 0.003))
    return ref, np.array(brake_state, dtype=float), msgs

def _noise(msgs, rng):
    "The drive with what a real bus adds; returns (messages, what was added by kind)."
    out, added = [], Counter()
    for k, m in enumerate(msgs):
        out.append(m)
        if k % 37 == 5:
            ts = m.timestamp + 0.0005
            data = bytearray(m.data)
            bad_sum = bytearray(data); bad_sum[7 if m.arbitration_id == 0x155 else 0] ^= 0x5A
            extra = {"extended_id": can.Message(arbitration_id=m.arbitration_id, data=bytes(data), is_extended_id=True, timestamp=ts),
                     "wrong_dlc": can.Message(arbitration_id=m.arbitration_id, data=bytes(data[:5]), is_extended_id=False, timestamp=ts),
                     "unknown_id": can.Message(arbitration_id=0x7AB, data=rng.bytes(8), is_extended_id=False, timestamp=ts),
                     "error": can.Message(is_error_frame=True, timestamp=ts)}
            if m.arbitration_id in (0x155, 0x118):
                extra["bad_checksum"] = can.Message(arbitration_id=m.arbitration_id, data=bytes(bad_sum), is_extended_id=False, timestamp=ts)
            for kind, x in extra.items(): out.append(x); added[kind] += 1
    return out, added

def _check(frames, ref, brake_state, codec):
    f = pd.concat(frames)
    assert np.unique(np.diff(f.index.asi8)).tolist() == [50_000_000]
    rel = f.index.asi8 / 1e9 - T0
    assert len(f) >= 0.9 * N / HZ * 20                         # nearly all of the 30 s (the grid starts at the later first sample)
    for j, name in enumerate(SIGNALS):
        t = ref.time_s + (0.003 if name in ("current", "voltage") else 0.0)      # the pack message comes 3 ms after the others
        want = np.interp(rel, t, brake_state if name == "brake" else ref.signals[:, j])
        err = np.abs(f[name].to_numpy() - want).max()
        tol = 1e-9 if name == "brake" else codec.quantum(name) / 2 + 1e-6
        assert err <= tol, (name, err, tol)

def test_codec_of_the_two_dbcs():
    codec = SignalCodec.from_config(_config())
    assert codec.groups() == {0x155: ("velocity",), 0x118: ("thrust", "brake"), 0x1A0: ("current", "voltage")}
    np.testing.assert_allclose([codec.quantum(n) for n in SIGNALS], [0.5, 0.004, 1.0, 0.1, 0.05])
    # tspace's own encoder (the simulator's) fills the 4-bit counters and the checksums so that a decoder accepts every message
    dec = CanFrameDecoder(codec, 30, 20.0)
    for i in range(40):
        for m in codec.encode(dict(velocity=50.0, thrust=0.2, brake=1.0, current=10.0, voltage=600.0), counter=i, timestamp=T0 + i / HZ):
            dec.feed(m)
    assert dec.stats["decoded"] == 120 and dec.stats["counter_errors"] == dec.stats["checksum_errors"] == 0, dict(dec.stats)

def test_drive_replays_through_a_production_dbc(tmp_path):
    ref, brake_state, msgs = _drive()
    cfg = _config()
    noisy, added = _noise(msgs, np.random.default_rng(0))
    dec = CanFrameDecoder.from_config(cfg, 30, 20.0)
    _check(dec.feed_many(noisy), ref, brake_state, dec.codec)
    assert dec.stats["decoded"] == len(msgs), dict(dec.stats)
    assert dec.stats["wrong_id_type"] == added["extended_id"] and dec.stats["wrong_dlc"] == added["wrong_dlc"]
    assert dec.stats["checksum_errors"] == added["bad_checksum"] and dec.stats["unknown_id"] == added["unknown_id"]
    assert dec.stats["garbage"] == added["error"] and dec.stats["counter_errors"] == 0
    log = tmp_path / "drive.log"                               # candump format: what a logger on the real truck writes
    with can.Logger(str(log)) as w:
        for m in msgs: w.on_message_received(m)
    replayed = CanFrameDecoder.from_config(cfg, 30, 20.0)
    _check(list(replay_frames(log, decoder=replayed)), ref, brake_state, replayed.codec)
    assert replayed.stats["decoded"] == len(msgs)

def test_invalid_brake_state_and_forged_counter_are_rejected():
    ref, brake_state, msgs = _drive()
    di = load_dbc(TESLA).get_message_by_name("DI_systemStatus")
    dec = CanFrameDecoder.from_config(_config(), 30, 20.0)
    i = next(k for k, m in enumerate(msgs) if m.arbitration_id == 0x118 and k > 300)
    vals = di.decode(msgs[i].data, decode_choices=False)
    invalid = bytearray(di.encode(vals | {"DI_brakePedalState": 2, "DI_systemStatusCounter": (vals["DI_systemStatusCounter"] + 1) % 16}))
    invalid[0] = tesla_checksum(0x118, invalid, 0)             # a well-formed message that says the brake state is INVALID
    forged = bytearray(di.encode(vals | {"DI_accelPedalPos": 100.0, "DI_systemStatusCounter": (vals["DI_systemStatusCounter"] + 7) % 16}))
    forged[0] = tesla_checksum(0x118, forged, 0)               # right checksum, counter out of sequence: injected by someone else
    ts = msgs[i].timestamp + 0.001
    stream = msgs[:i + 1] + [can.Message(arbitration_id=0x118, data=bytes(d), is_extended_id=False, timestamp=ts) for d in (invalid, forged)] + msgs[i + 1:]
    _check(dec.feed_many(stream), ref, brake_state, dec.codec)
    # INVALID is rejected (but its counter is the next one); the forged message is rejected, and so is the real next one,
    # whose counter repeats the INVALID message's; the one after that follows it again
    assert (dec.stats["invalid_value"], dec.stats["counter_errors"], dec.stats["decoded"]) == (1, 2, len(msgs) - 1), dict(dec.stats)
