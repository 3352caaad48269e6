"Flashing torque rows through KvaserCAN against the virtual VCU: round trip, every negative response, retries."
import threading, time, uuid
from collections import Counter
import can
import numpy as np
import pytest
from tspace.conn.can import CanConfig, open_bus
from tspace.conn.uds import TORQUE_LSB_NM, encode_rows, DID_TORQUE_ROWS
from tspace.dataflow.kvaser import KvaserCAN
from tspace.sim.ecu import VirtualVCU
from tspace.system.errors import FlashError
from tspace.data.torquemap import TorqueMap
from tspace.data.core import ActionSpec
from tspace.dataflow.flash import FlashPath
from tspace.dataflow.pipeline import BlockingQueue, FlashRequest

@pytest.fixture
def pair():
    cfg = CanConfig(channel=f"uds-{uuid.uuid4().hex[:8]}", uds_timeout_s=0.2, flash_retries=2, bus_timeout_s=30)
    vbus = open_bus(cfg)
    vcu = VirtualVCU(vbus, cfg, write_time_s=0.0).start(publish=False)
    kv = KvaserCAN(cfg, 30, 20.0).start()
    kv.client.busy_pause_s = 0.01
    yield kv, vcu
    kv.stop(); vcu.stop(); vbus.shutdown()

def _lowered(rows, nm):
    "`rows` lowered by `nm` Nm and kept at the stock torque at zero pedal: a safe map for monotone stock rows."
    return np.maximum(rows - nm, rows[:, :1])

def _refused(fn, code):
    with pytest.raises(FlashError) as ei: fn()
    assert ei.value.code == code, (ei.value.code, str(ei.value))
    return str(ei.value)

def test_round_trip_changes_the_simulated_truck(pair):
    kv, vcu = pair
    stock = vcu.sim.stock_map.table
    rows = np.maximum.accumulate(stock[5:9] - np.linspace(0, 250, 17), axis=1)   # only lower, full budget on the right, monotone
    table = kv.flash_rows(5, rows)
    assert np.abs(table[5:9] - rows).max() <= TORQUE_LSB_NM / 2 + 1e-9
    assert np.abs(vcu.sim.torque_map.table[5:9] - rows).max() <= TORQUE_LSB_NM / 2 + 1e-9
    np.testing.assert_allclose(table[:5], stock[:5], atol=TORQUE_LSB_NM / 2); np.testing.assert_allclose(table[9:], stock[9:], atol=TORQUE_LSB_NM / 2)
    np.testing.assert_allclose(kv.read_map(), table)

def test_wrong_length(pair):
    kv, _ = pair
    assert "incorrectMessageLengthOrInvalidFormat" in _refused(lambda: kv.flash_rows(0, np.zeros((1, 16))), 0x13)   # 16 of 17 columns
    _refused(lambda: kv.client.write_raw(DID_TORQUE_ROWS, encode_rows(0, np.zeros((2, 17)))[:-3]), 0x13)

def test_out_of_range_row_and_torque(pair):
    kv, vcu = pair
    assert "requestOutOfRange" in _refused(lambda: kv.flash_rows(11, np.zeros((4, 17))), 0x31)   # rows 11..14 of 0..13
    _refused(lambda: kv.flash_rows(0, np.full((1, 17), 1600.0)), 0x31)      # above the 1500 Nm motor peak
    _refused(lambda: kv.flash_rows(0, np.full((1, 17), -900.0)), 0x31)      # below the -800 Nm regen peak
    _refused(lambda: kv.client.write_raw(0xF190, b"12345"), 0x31)           # not a writable DID
    np.testing.assert_array_equal(vcu.sim.torque_map.table, vcu.sim.stock_map.table)   # nothing was applied

def test_conditions_not_correct(pair):
    kv, vcu = pair
    vcu.inhibit_writes = True
    assert "conditionsNotCorrect" in _refused(lambda: kv.flash_rows(0, vcu.sim.stock_map.table[:1]), 0x22)

def test_busy_is_repeated_then_refused(pair):
    kv, vcu = pair
    stock = vcu.sim.stock_map.table
    kv.client.busy_pause_s = 0.02
    vcu.write_time_s = 0.04                     # programming takes 40 ms: the repeats (after 20 + 40 ms) ride it out
    kv.flash_rows(0, _lowered(stock[:1], 1.0))
    kv.flash_rows(1, _lowered(stock[1:2], 1.0))
    assert kv.client.stats["busy"] >= 1
    vcu.write_time_s = 5.0                      # far longer than all repeats
    kv.flash_rows(2, _lowered(stock[2:3], 1.0))
    assert "busyRepeatRequest" in _refused(lambda: kv.flash_rows(3, _lowered(stock[3:4], 1.0)), 0x21)

def test_timeout_is_retried(pair):
    kv, vcu = pair
    vcu.drop_requests(2)                        # two lost requests, the third gets through
    kv.flash_rows(4, _lowered(vcu.sim.stock_map.table[4:5], 10.0))
    assert kv.client.stats["timeouts"] == 2 and vcu.stats["writes"] == 1
    vcu.drop_requests(3)                        # more than the 2 retries
    with pytest.raises(FlashError, match="no response") as ei: kv.flash_rows(4, vcu.sim.stock_map.table[4:5])
    assert ei.value.code is None


def test_unsafe_maps_are_refused_and_named(pair):
    "The VCU refuses a map that breaks a safety rule with requestOutOfRange and counts it; given the rules, the tester names the rule."
    from tspace.data.core import ActionSpec
    kv, vcu = pair
    stock = vcu.sim.stock_map.table
    saw = _lowered(stock[5:9], 50.0); saw[1, 8] = saw[1, 7] - 100.0             # torque falls with more pedal
    regen = _lowered(stock[5:9], 50.0); regen[:, 0] = -250.0                    # regeneration at zero pedal
    for k, bad in enumerate([saw, regen]):
        assert "requestOutOfRange" in _refused(lambda: kv.flash_rows(5, bad), 0x31)
        assert vcu.stats["refused_unsafe"] == k + 1
    np.testing.assert_array_equal(vcu.sim.torque_map.table, stock)             # nothing was applied
    spec = ActionSpec()
    kv.client.map_rules = lambda start, rows: spec.map_problems(stock[start:start + len(rows)], rows, tol_nm=TORQUE_LSB_NM / 2 + 1e-6)
    msg = _refused(lambda: kv.flash_rows(5, saw), 0x31)
    assert "break the safety rule(s) monotone" in msg and "torque falls" in msg, msg
    assert "zero pedal" in _refused(lambda: kv.flash_rows(5, regen), 0x31)
    assert vcu.stats["refused_unsafe"] == 4
    safe = spec.apply_safe(stock[5:9], np.tile([-1.0, 0.0], 9)[:17] * np.ones((4, 1)))   # the same saw-tooth, projected
    kv.flash_rows(5, safe)                                                        # accepted
    assert vcu.stats["refused_unsafe"] == 4 and vcu.stats["writes"] == 1


class _Noise:
    "Random 8-byte frames on the VCU's response id, about one per millisecond, from a thread of its own (seeded: the same noise each run)."
    def __init__(self, cfg, seed=0):
        self.bus, self.cfg, self.rng = open_bus(cfg), cfg, np.random.default_rng(seed)
        self.done, self.sent = threading.Event(), 0
        self.thread = threading.Thread(target=self._send, daemon=True)
    def _send(self):
        while not self.done.is_set():
            self.bus.send(can.Message(arbitration_id=self.cfg.uds_rx_id, data=self.rng.bytes(8), is_extended_id=False))
            self.sent += 1
            time.sleep(0.001)                   # pacing of the generator, not a wait for a result
    def __enter__(self): self.thread.start(); return self
    def __exit__(self, *exc):
        self.done.set(); self.thread.join(5); self.bus.shutdown()
        assert not self.thread.is_alive()

def test_noise_on_the_response_id_is_a_flash_error(pair):
    "Random frames on 0x7E8 while flashing: every failure is a FlashError naming the reason; the client works again afterwards."
    kv, vcu = pair
    stock = vcu.sim.stock_map.table
    kv.client.retries = 0                       # every invalid response fails its request (with retries most are ridden out)
    outcomes, reasons = Counter(), Counter()
    invalid = "invalid response from the VCU after 1 at"
    with _Noise(kv.cfg) as noise:
        # flash until the noise has hit a request: how many flashes that takes depends on the machine's speed, not the outcome
        for k in range(400):
            if noise.sent > 100 and reasons[invalid] >= 1 and k >= 12: break
            try: kv.flash_rows(k % 10, _lowered(stock[k % 10:k % 10 + 4], 5.0))
            except FlashError as e:
                outcomes["failed"] += 1; reasons[str(e).split(":")[1].strip()[:40]] += 1
            else: outcomes["ok"] += 1
    assert noise.sent > 100 and outcomes["failed"] >= 1, (noise.sent, outcomes)
    assert kv.client.stats["invalid_responses"] >= 1, kv.client.stats
    assert kv.stats["uds_invalid_responses"] == kv.client.stats["invalid_responses"]     # in the interface's stats, so in the summary
    assert reasons[invalid] >= 1, reasons
    # quiet again: the same client flashes once a reception the noise left open has timed out (can-isotp: 1 s)
    deadline = time.monotonic() + 5.0
    while True:
        try: kv.flash_rows(2, _lowered(stock[2:6], 7.0)); break
        except FlashError as e: assert time.monotonic() < deadline, f"no flash within 5 s of the noise's end: {e}"
    np.testing.assert_allclose(vcu.sim.torque_map.table[2:6], _lowered(stock[2:6], 7.0), atol=TORQUE_LSB_NM / 2 + 1e-9)

def test_flash_worker_goes_on_through_noise(pair):
    "The flash worker on a noisy response id: every request gets a report, failures are counted, the worker returns when its queue closes."
    kv, vcu = pair
    stock = TorqueMap.default()
    reports, q = [], BlockingQueue(64)
    kv.client.retries = 0
    fp = FlashPath(kv, stock, ActionSpec(), q, reports.append, min_interval_s=0.0)
    for seq in range(10): q.put(FlashRequest(seq, np.zeros(ActionSpec().shape), reset=True))   # resets are never superseded
    q.close()
    with _Noise(kv.cfg, seed=1):
        worker = threading.Thread(target=fp.run, args=(threading.Event(),), daemon=True)
        worker.start(); worker.join(60)
        assert not worker.is_alive()
    assert [r.seq for r in reports] == list(range(10))
    failed = [r for r in reports if not r.ok]
    assert fp.stats["failed"] == len(failed) >= 1 and fp.stats["written"] == 10 - len(failed), (fp.stats, len(failed))
    assert all(r.error for r in failed)
    assert any("invalid response from the VCU" in r.error for r in failed), [r.error for r in failed]
