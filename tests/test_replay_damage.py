"""Damaged CAN logs: empty, random and header-plus-garbage BLF files, a BLF cut short, a junk line in ASC/candump/CSV logs,
and arbitrary bytes under every suffix: read_log and `tspace replay` give what is readable, say what was lost, never a traceback."""
import subprocess
from pathlib import Path

import can
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tspace.conn.can import LogReading, read_log
from tspace.system.errors import DecodeError, TspaceError

from cli_helpers import TSPACE, clean_env

T0 = 1_780_000_000.0


def messages(n: int = 14) -> list[can.Message]:
    return [can.Message(timestamp=T0 + 0.01 * k, arbitration_id=0x100 + k % 0x600, data=bytes([k % 256] * 8), is_extended_id=False, channel=0)
            for k in range(n)]


def write_log(path: Path, n: int = 14) -> Path:
    with can.Logger(str(path)) as w:
        for m in messages(n): w.on_message_received(m)
    return path


def replay(path):
    return subprocess.run([TSPACE, "replay", str(path)], capture_output=True, text=True, env=clean_env(), timeout=120)


@pytest.mark.parametrize("content", [b"", np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes(), "header+garbage"])
def test_a_blf_that_is_no_blf_is_one_error_line_and_exit_2(tmp_path, content):
    path = tmp_path / "drive.blf"
    if content == "header+garbage":
        content = write_log(tmp_path / "real.blf").read_bytes()[:144] + b"\x17garbage" * 100
    path.write_bytes(content)
    with pytest.raises(DecodeError, match="drive.blf"):
        list(read_log(path))
    r = replay(path)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.stderr.startswith("tspace replay: CAN log ") and "drive.blf" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr


def test_a_blf_cut_short_replays_what_is_there_and_says_what_was_lost(tmp_path):
    full = write_log(tmp_path / "full.blf", 6000).read_bytes()      # several compressed containers
    cut = tmp_path / "cut.blf"
    cut.write_bytes(full[:int(len(full) * 0.6)])
    reading = LogReading(cut)
    got = list(read_log(cut, reading))
    assert 0 < len(got) < 6000 and reading.messages == len(got)
    assert [m.arbitration_id for m in got] == [0x100 + k % 0x600 for k in range(len(got))]      # what is there is right
    assert reading.damaged and reading.lost_bytes == len(full) - len(cut.read_bytes())
    assert "cut short" in reading.summary() and "6000 object(s) announced" in reading.summary(), reading.summary()
    r = replay(cut)
    assert r.returncode == 0 and "warning: CAN log" in r.stderr and "cut short" in r.stderr, r.stderr[-2000:]
    intact = LogReading(tmp_path / "full.blf")
    assert len(list(read_log(tmp_path / "full.blf", intact))) == 6000 and not intact.damaged


@pytest.mark.parametrize("suffix, junk", [(".asc", "   1.234567 1  1FX  Rx   d 8 zz zz zz\n"), (".log", "(1780000000.5) can0 12G#DEAD\n"),
                                          (".csv", "1780000000.5,0x1,0,0,0,not-a-number,AAAA\n")])
def test_one_junk_line_in_a_text_log_is_skipped_and_counted(tmp_path, suffix, junk):
    path = write_log(tmp_path / f"drive{suffix}")
    lines = path.read_text().splitlines(keepends=True)
    body = [i for i, line in enumerate(lines) if "1" in line and i > 0]
    at = body[len(body) // 2]
    path.write_text("".join(lines[:at] + [junk] + lines[at:]))
    reading = LogReading(path)
    got = list(read_log(path, reading))
    assert [m.arbitration_id for m in got] == [0x100 + k for k in range(14)], [hex(m.arbitration_id) for m in got]
    assert reading.skipped_lines == 1 and f"line {at + 1} skipped" in reading.summary(), reading.summary()
    r = replay(path)
    assert r.returncode == 0 and "1 line(s) skipped" in r.stderr, r.stderr[-2000:]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=3000), suffix=st.sampled_from([".blf", ".asc", ".log", ".csv"]), keep_head=st.booleans())
def test_arbitrary_bytes_as_a_can_log_raise_only_tspace_errors(tmp_path_factory, data, suffix, keep_head):
    d = tmp_path_factory.mktemp("log")
    path = d / f"drive{suffix}"
    if keep_head: data = write_log(d / f"real{suffix}").read_bytes()[:len(data)] + data
    path.write_bytes(data)
    reading = LogReading(path)
    try: got = list(read_log(path, reading))
    except TspaceError: return
    assert len(got) == reading.messages
