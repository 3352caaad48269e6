"""A real VCU's calibration rules against the simulated VCU, through the tester tspace uses (`TorqueMapClient` in KvaserCAN):
diagnostic session, SecurityAccess with attempt counting and lock-out, TesterPresent and the S3 timer, read-back and checksum
of every write, the VCU's watchdog."""
import uuid
import numpy as np
import pytest
from servers import wait_until
from tspace.conn.can import CanConfig, open_bus
from tspace.conn.uds import TORQUE_LSB_NM, TorqueMapClient
from tspace.dataflow.kvaser import KvaserCAN
from tspace.sim.ecu import VirtualVCU, example_key
from tspace.system.errors import FlashError

FAST = dict(tester_present_s=0.1, s3_timeout_s=0.6, max_key_attempts=3, lockout_s=0.8, watchdog_s=0)


def _pair(vcu_flash: dict, tester_flash: dict | None = None):
    "A VirtualVCU enforcing `vcu_flash` and a KvaserCAN whose tester uses `tester_flash` (the same by default) on one virtual bus."
    cfg = CanConfig(channel=f"sec-{uuid.uuid4().hex[:8]}", uds_timeout_s=0.3, flash_retries=1, bus_timeout_s=60, flash=vcu_flash)
    vbus = open_bus(cfg)
    vcu = VirtualVCU(vbus, cfg, write_time_s=0.0).start(publish=False)
    tester_cfg = cfg if tester_flash is None else cfg.model_copy(update={"flash": cfg.flash.model_copy(update=tester_flash)})
    kv = KvaserCAN(tester_cfg, 30, 20.0).start()
    return kv, vcu, vbus


@pytest.fixture
def made():
    made = []
    def make(vcu_flash=FAST, tester_flash=None):
        made.append(_pair(vcu_flash, tester_flash))
        return made[-1][:2]
    yield make
    for kv, vcu, vbus in made:
        kv.stop(); vcu.stop(); vbus.shutdown()


def _lowered(vcu, start=5, n=4, nm=40.0):
    stock = vcu.sim.stock_map.table[start:start + n]
    return np.maximum(stock - nm, stock[:, :1])


def _refused(fn, code):
    with pytest.raises(FlashError) as ei: fn()
    assert ei.value.code == code, (ei.value.code, str(ei.value))
    return str(ei.value)


def test_a_write_needs_the_session_and_security_access(made):
    kv, vcu = made(tester_flash={"session": "default", "security_level": 0})          # a tester that opens nothing
    assert "serviceNotSupportedInActiveSession" in _refused(lambda: kv.flash_rows(5, _lowered(vcu)), 0x7F)
    kv2, vcu2 = made(tester_flash={"security_level": 0})                                # the session, but no key
    assert "securityAccessDenied" in _refused(lambda: kv2.flash_rows(5, _lowered(vcu2)), 0x33)
    assert vcu2.session == 0x03 and not vcu2.unlocked
    for v in (vcu, vcu2):
        np.testing.assert_array_equal(v.sim.torque_map.table, v.sim.stock_map.table)  # nothing was applied
        assert v.stats["writes"] == 0


def test_the_full_sequence_writes_and_reads_back(made):
    kv, vcu = made()
    rows = _lowered(vcu)
    table = kv.flash_rows(5, rows)
    assert np.abs(table[5:9] - rows).max() <= TORQUE_LSB_NM / 2 + 1e-9
    assert np.abs(vcu.sim.torque_map.table[5:9] - rows).max() <= TORQUE_LSB_NM / 2 + 1e-9
    assert (vcu.session, vcu.unlocked, vcu.stats["sessions"], vcu.stats["unlocks"], vcu.stats["writes"]) == (0x03, True, 1, 1, 1)
    assert (kv.client.stats["sessions"], kv.client.stats["unlocks"]) == (1, 1)


def test_tester_present_keeps_the_session_past_s3(made):
    kv, vcu = made()
    kv.flash_rows(5, _lowered(vcu))
    wait_until(lambda: vcu.stats["tester_present"] >= 12, timeout=20, what="12 TesterPresent at 0.1 s (twice S3 of 0.6 s)")
    kv.flash_rows(5, _lowered(vcu, nm=60.0))
    assert vcu.stats["session_timeouts"] == 0 and vcu.stats["sessions"] == 1 and kv.client.stats.get("session_reopened", 0) == 0


def test_a_session_without_tester_present_times_out(made):
    kv, vcu = made({**FAST, "s3_timeout_s": 1.5}, tester_flash={"tester_present_s": 1000.0})   # a tester that never sends it
    kv.flash_rows(5, _lowered(vcu))
    wait_until(lambda: vcu.stats["session_timeouts"] == 1, timeout=10, what="the VCU's S3 timeout (1.5 s)")
    assert (vcu.session, vcu.unlocked) == (0x01, False)
    kv.flash_rows(5, _lowered(vcu, nm=60.0))                   # refused, then the tester opens session and security again
    assert kv.client.stats["session_reopened"] == 1 and vcu.stats["sessions"] == 2 and vcu.stats["writes"] == 2
    assert vcu.stats["nrc_7f"] == 1


def test_wrong_keys_count_and_lock_for_the_delay(made):
    kv, vcu = made()
    kv.open()
    kv.client.key_function = lambda level, seed: bytes(4)                              # not the VCU's algorithm
    assert "invalidKey" in _refused(lambda: kv.flash_rows(5, _lowered(vcu)), 0x35)
    assert "invalidKey" in _refused(lambda: kv.flash_rows(5, _lowered(vcu)), 0x35)
    msg = _refused(lambda: kv.flash_rows(5, _lowered(vcu)), 0x36)                      # the third wrong key
    assert "exceededNumberOfAttempts" in msg and "wait" in msg
    assert vcu.stats["invalid_keys"] == 3 and vcu.stats["lockouts"] == 1
    kv.client.key_function = example_key                                                # the right key, too early
    assert "requiredTimeDelayNotExpired" in _refused(lambda: kv.flash_rows(5, _lowered(vcu)), 0x37)
    assert vcu.stats["unlocks"] == 0
    wait_until(lambda: vcu.clock() >= vcu._locked_until, timeout=10, what="the end of the 0.8 s lock-out")
    kv.flash_rows(5, _lowered(vcu))
    assert vcu.stats["unlocks"] == 1 and vcu.stats["writes"] == 1


def test_read_back_catches_a_corrupted_write(made):
    kv, vcu = made()
    vcu.corrupt_next_write()
    with pytest.raises(FlashError, match="not verified on read-back: max difference 5.00 Nm"): kv.flash_rows(5, _lowered(vcu))
    assert vcu.stats["corrupted_writes"] == 1
    kv.flash_rows(5, _lowered(vcu))                                                     # the next one is stored as sent


def test_the_checksum_routine_catches_a_corrupted_write(made):
    kv, vcu = made({**FAST, "checksum_routine": 0xFF01})
    kv.flash_rows(5, _lowered(vcu))
    assert vcu.stats["checksums"] == 1
    vcu.corrupt_next_write()
    with pytest.raises(FlashError, match="checksum routine 0xFF01: the VCU's rows 5..8 differ"): kv.flash_rows(5, _lowered(vcu, nm=60.0))
    assert vcu.stats["checksums"] == 2


def test_the_watchdog_restores_the_stock_map_when_the_tester_goes_quiet(made):
    kv, vcu = made({**FAST, "watchdog_s": 0.8})
    kv.flash_rows(5, _lowered(vcu))
    wait_until(lambda: vcu.stats["tester_present"] >= 10, timeout=20, what="1 s of TesterPresent")
    assert vcu.stats["watchdog_restores"] == 0                       # TesterPresent feeds the watchdog
    kv.client.close()                                                # the tester goes away (back to the default session)
    wait_until(lambda: vcu.stats["watchdog_restores"] == 1, timeout=10, what="the VCU's 0.8 s watchdog")
    np.testing.assert_array_equal(vcu.sim.torque_map.table, vcu.sim.stock_map.table)


def test_a_bad_key_function_is_a_config_error():
    from tspace.system.errors import ConfigError
    cfg = CanConfig(flash={"key_function": "tspace.nowhere:key"})
    with pytest.raises(ConfigError, match="vehicle.can.flash.key_function = 'tspace.nowhere:key': module 'tspace.nowhere' cannot be imported"):
        TorqueMapClient.on_bus(None, cfg)


# --- the same over XCP on CAN (vehicle.can.flash.calibration = "xcp")

XCP = {**FAST, "calibration": "xcp"}


def test_xcp_writes_and_reads_back(made):
    from tspace.conn.xcp import XcpMapClient
    kv, vcu = made(XCP)
    assert isinstance(kv.client, XcpMapClient)
    rows = _lowered(vcu)
    table = kv.flash_rows(5, rows)
    assert np.abs(table[5:9] - rows).max() <= TORQUE_LSB_NM / 2 + 1e-9
    assert np.abs(vcu.sim.torque_map.table[5:9] - rows).max() <= TORQUE_LSB_NM / 2 + 1e-9
    assert vcu.stats["writes"] >= 1 and vcu.stats["xcp_connects"] == 1 and vcu.stats["nrc_31"] == 0   # applied row by row as rows complete


def test_xcp_refusals_are_named(made):
    kv, vcu = made(XCP)
    stock = vcu.sim.stock_map.table
    with pytest.raises(FlashError, match=r"ERR_OUT_OF_RANGE \(0x22\)") as ei: kv.flash_rows(5, stock[5:9] + 10.0)   # above stock: unsafe
    assert ei.value.code == 0x22 and vcu.stats["refused_unsafe"] == 1
    with pytest.raises(FlashError, match="ERR_ACCESS_DENIED") as ei: kv.client.link.download(kv.client.map_address, b"\x01\x01")  # the header
    assert ei.value.code == 0x24
    with pytest.raises(FlashError, match="ERR_CMD_UNKNOWN"): kv.client.link.command("PROGRAM_START", b"\xd2")
    np.testing.assert_array_equal(vcu.sim.torque_map.table, stock)


def test_xcp_read_back_catches_a_corrupted_write(made):
    kv, vcu = made(XCP)
    vcu.corrupt_next_write()
    with pytest.raises(FlashError, match="not verified on read-back: max difference 5.00 Nm"): kv.flash_rows(5, _lowered(vcu))


def test_xcp_heartbeat_feeds_the_watchdog_and_silence_restores_stock(made):
    kv, vcu = made({**XCP, "watchdog_s": 0.8})
    kv.flash_rows(5, _lowered(vcu))
    start = vcu.stats["xcp_commands"]
    wait_until(lambda: vcu.stats["xcp_commands"] >= start + 10, timeout=20, what="10 heartbeats (1 s at 0.1 s)")
    assert vcu.stats["watchdog_restores"] == 0
    kv.client.close()
    wait_until(lambda: vcu.stats["watchdog_restores"] == 1, timeout=10, what="the VCU's 0.8 s watchdog")
    np.testing.assert_array_equal(vcu.sim.torque_map.table, vcu.sim.stock_map.table)


@pytest.mark.parametrize("calibration", ["uds", "xcp"])
def test_restore_over_either_path(made, calibration):
    from tspace.dataflow.flash import restore_stock_map
    kv, vcu = made({**FAST, "calibration": calibration})
    kv.flash_rows(5, _lowered(vcu, nm=80.0))
    rec = restore_stock_map(kv, vcu.sim.stock_map.table, timeout_s=5.0)
    assert rec["verified"] and rec["before_max_difference_nm"] >= 40.0, rec
    assert np.abs(vcu.sim.torque_map.table - vcu.sim.stock_map.table).max() <= TORQUE_LSB_NM / 2 + 1e-9


def test_response_pending_waits_for_the_answer(made):
    "responsePending (0x78): udsoncan waits up to P2* (2 s here) for the real answer, longer than the 0.3 s P2 timeout."
    kv, vcu = made()
    vcu.answer_pending(3, delay_s=0.5)                   # the session, the seed and the key each take 0.5 s
    kv.flash_rows(5, _lowered(vcu))
    assert vcu.stats["nrc_78"] == 3 and vcu.stats["writes"] == 1 and kv.client.stats["timeouts"] == 0
