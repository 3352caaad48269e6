"""Damaged pool files (bit rot in a data page, a field of the wrong type, arbitrary bytes), files left by a writer killed
between fsync and rename, and what the log says about records that are buffered or written."""
import logging, os, signal, subprocess, sys, time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tspace.data.codec import records_to_arrow
from tspace.data.core import field_truck_meta, records_from_arrays
from tspace.storage.pool.avro import AvroPool
from tspace.storage.pool.base import Folder
from tspace.storage.pool.parquet import ParquetPool
from tspace.system.errors import TspaceError

from cli_helpers import TSPACE, clean_env

META = field_truck_meta(vehicle="truck-d", driver="dana")
T0 = pd.Timestamp("2026-06-01T08:00:00Z")


def episode(e: int, n: int = 40, seed: int = 0) -> pd.DataFrame:
    "Episode `e` of `n` records, an hour after episode e-1; reward = -step - 100 e so each record is known by value."
    rng = np.random.default_rng(seed + e)
    t0 = T0 + pd.Timedelta(hours=e)
    s = rng.uniform(0, 1, size=(n + 1, *META.state.shape))
    return records_from_arrays(META, timestamp=t0 + pd.to_timedelta(1.5 * np.arange(1, n + 1), unit="s"), episode_start=t0,
                               step=np.arange(n), state=s[:-1], action=rng.uniform(-1, 1, size=(n, *META.action.shape)),
                               reward=-(np.arange(n) + 100.0 * e), next_state=s[1:], terminal=np.arange(n) == n - 1)


def write_pool(root, kind=ParquetPool, episodes=3) -> list[str]:
    "A pool of `episodes` episodes, one file each; returns the file paths in episode order."
    for e in range(episodes):
        with kind(str(root), META) as pool: pool.append_episode(episode(e))
    suffix = ".parquet" if kind is ParquetPool else ".avro"
    return [f.path for f in Folder(str(root)).files(suffix)]


def rot(path, n: int = 300, seed: int = 1) -> None:
    "Overwrite `n` bytes in the middle of the file with random bytes (bit rot in its data pages)."
    data = bytearray(Path(path).read_bytes())
    mid = len(data) // 2
    data[mid:mid + n] = np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()
    Path(path).write_bytes(bytes(data))


def wrong_typed_file(root) -> str:
    "A file in the pool's folder whose `reward` column holds strings (a tspace footer, a schema that is not the records')."
    t = records_to_arrow(episode(7), META).drop_columns(["vehicle", "driver"])
    i = t.schema.get_field_index("reward")
    t = t.set_column(i, "reward", pa.array([f"{v:.1f}" for v in t.column("reward").to_pylist()], pa.string()))
    t = t.replace_schema_metadata(records_to_arrow(episode(7), META).schema.metadata)
    path = f"{Folder(str(root)).partition_dir(META.vehicle, META.driver, '2026-06-01')}/part-20260601T150000000000Z-wrongtyped00.parquet"
    pq.write_table(t, path)
    return path


def test_bit_rot_in_a_data_page_is_named_counted_and_skipped_by_every_read(tmp_path, caplog):
    files = write_pool(tmp_path / "pool")
    rot(files[1])
    pool = ParquetPool(str(tmp_path / "pool"))
    with caplog.at_level(logging.WARNING, logger="tspace"):
        got = pool.query()
    assert sorted(set((-got.reward.to_numpy() // 100).astype(int))) == [0, 2]     # episodes 0 and 2; 1 was in the rotten file
    assert list(pool.damaged) == [files[1]] and "warning" not in pool.damaged[files[1]].lower()
    assert any(files[1] in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    eps = ParquetPool(str(tmp_path / "pool")).episodes()                          # the light columns alone still read ...
    b = ParquetPool(str(tmp_path / "pool")).sample(500, rng=0)                    # ... but sampling decodes whole files
    assert set((-b["r"] // 100).astype(int).tolist()) <= {0, 2} and len(b["r"]) == 500
    assert ParquetPool(str(tmp_path / "pool")).verify() .keys() == {files[1]}
    assert len(eps) >= 2


def test_a_file_with_a_wrong_typed_field_is_refused_by_the_schema_check(tmp_path):
    write_pool(tmp_path / "pool", episodes=2)
    bad = wrong_typed_file(tmp_path / "pool")
    pool = ParquetPool(str(tmp_path / "pool"))
    assert len(pool.query()) == 80 and pool.count() == 80 and len(pool.episodes()) == 2
    assert list(pool.damaged) == [bad] and "reward" in pool.damaged[bad] and "string" in pool.damaged[bad]
    assert len(pool.sample(10, rng=0)["r"]) == 10


def test_a_damaged_avro_file_is_named_counted_and_skipped(tmp_path):
    files = write_pool(tmp_path / "pool", AvroPool)
    rot(files[1])
    pool = AvroPool(str(tmp_path / "pool"))
    got = pool.query()
    assert sorted(set((-got.reward.to_numpy() // 100).astype(int))) == [0, 2]
    assert list(pool.damaged) == [files[1]]
    assert AvroPool(str(tmp_path / "pool")).verify().keys() == {files[1]}


def test_pool_info_reads_every_file_and_reports_the_damaged_ones(tmp_path):
    files = write_pool(tmp_path / "pool")
    rot(files[1])
    bad = wrong_typed_file(tmp_path / "pool")
    r = subprocess.run([TSPACE, "pool", "info", str(tmp_path / "pool")], capture_output=True, text=True, env=clean_env(), timeout=60)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "2 damaged file(s)" in r.stderr and files[1] in r.stdout and bad in r.stdout, (r.stdout, r.stderr)
    assert "80 records in 2 episodes" in r.stdout, r.stdout                   # what is readable is still listed
    assert "Traceback" not in r.stderr


def test_train_skips_a_damaged_file_with_a_warning_naming_it(tmp_path):
    files = write_pool(tmp_path / "pool")
    rot(files[1])
    cfg = tmp_path / "tiny.toml"
    cfg.write_text("[agent]\nhidden_units = [8, 8]\nbatch_size = 4\n")
    r = subprocess.run([TSPACE, "train", "--data", str(tmp_path / "pool"), "--config", str(cfg), "--updates", "3",
                        "--out", str(tmp_path / "ck")], capture_output=True, text=True, env=clean_env(), timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "learned from 80 record(s) in 2 episode(s)" in r.stdout, r.stdout
    assert files[1] in r.stderr and "damaged" in r.stderr and "Traceback" not in r.stderr, r.stderr[-3000:]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=4096), suffix=st.sampled_from([".parquet", ".avro"]), keep_head=st.booleans())
def test_arbitrary_bytes_as_a_pool_file_raise_only_tspace_errors(tmp_path_factory, data, suffix, keep_head):
    root = tmp_path_factory.mktemp("pool")
    kind = ParquetPool if suffix == ".parquet" else AvroPool
    path = write_pool(root, kind, episodes=1)[0]
    if keep_head: data = Path(path).read_bytes()[:len(data)] + data   # a real header, then garbage
    Path(path).write_bytes(data)
    pool = kind(str(root))
    for read in (pool.query, pool.episodes, pool.count, pool.verify, lambda: pool.sample(2, rng=0)):
        try: read()
        except TspaceError: pass
    assert list(pool.damaged) in ([], [path])


KILL_BETWEEN_FSYNC_AND_RENAME = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from test_pool_damage import episode, META
from tspace.storage.pool.{module} import {kind}
os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)          # the file is written and synced; the rename never comes
with {kind}({root!r}, META) as pool: pool.append_episode(episode(5))
"""


@pytest.mark.parametrize("kind", [ParquetPool, AvroPool])
def test_a_writer_killed_between_fsync_and_rename_is_recovered_when_the_pool_next_opens(tmp_path, caplog, kind):
    root = tmp_path / "pool"
    write_pool(root, kind, episodes=1)
    script = KILL_BETWEEN_FSYNC_AND_RENAME.format(tests=str(Path(__file__).parent), module=kind.__module__.rsplit(".", 1)[1],
                                                  kind=kind.__name__, root=str(root))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    folder = Folder(str(root))
    complete = folder.temp_files()
    assert len(complete) == 1
    junk = complete[0].rsplit("/", 1)[0] + "/.part-20260601T100000000000Z-000000000000.parquet.deadbeef.tmp"
    Path(junk).write_bytes(b"PAR1 half a file")                    # a writer killed mid-write leaves a torn one
    old = time.time() - 3600
    for p in (complete[0], junk): os.utime(p, (old, old))
    assert len(kind(str(root)).query()) == 40                     # readers ignore temporary files
    with caplog.at_level(logging.INFO, logger="tspace"):
        pool = kind(str(root), META)
    assert folder.temp_files() == []
    lines = [r.getMessage() for r in caplog.records if "temporary file" in r.getMessage()]
    assert len(lines) == 1 and "1 recovered" in lines[0] and "1 quarantined" in lines[0], lines
    assert sorted(set((-pool.query().reward.to_numpy() // 100).astype(int))) == [0, 5]   # the synced episode is back
    assert [p.name for p in (root / "_quarantine").rglob("*.tmp")] == [Path(junk).name]
    pool.close()


def test_a_young_temporary_file_may_belong_to_a_live_writer_and_is_left_alone(tmp_path):
    root = tmp_path / "pool"
    write_pool(root, episodes=1)
    d = Folder(str(root)).partition_dir(META.vehicle, META.driver, "2026-06-01")
    young = Path(d) / ".part-20260601T100000000000Z-000000000000.parquet.0badf00d.tmp"
    young.write_bytes(b"PAR1 being written")
    ParquetPool(str(root), META).close()
    assert young.exists()


def test_the_log_says_buffered_until_the_records_are_written(tmp_path, caplog):

    pool = ParquetPool(str(tmp_path / "pool"), META, flush_every=64)
    with caplog.at_level(logging.INFO, logger="tspace"):
        pool.append_episode(episode(0, n=40))
        pool.append_episode(episode(1, n=40))
        pool.close()
    msgs = [r.getMessage() for r in caplog.records]
    written = [m for m in msgs if "written (durable)" in m]
    assert [m.split(": ")[-1] for m in written] == ["80 record(s) written (durable)"], msgs
