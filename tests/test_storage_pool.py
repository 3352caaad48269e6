"""Pools under conditions a notebook cannot stage: a writer killed with SIGKILL mid-write, randomized queries across
time zones and DST changes checked against an independent computation, and pandas/Dask reading the same rows."""
import os, signal, subprocess, sys, time
import zoneinfo
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tspace.data.core import field_truck_meta, records_from_arrays
from tspace.storage.pool.parquet import ParquetPool

HERE = Path(__file__).parent


def test_sigkill_mid_write_keeps_every_flushed_record_and_no_corrupt_file(tmp_path):
    sys.path.insert(0, str(HERE))
    import storage_writer as w
    root = tmp_path / "pool"
    per_flush, kill_at = 1500, 2
    proc = subprocess.Popen([sys.executable, str(HERE / "storage_writer.py"), str(root), str(per_flush), "5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    confirmed, in_flight, saw_tmp = 0, None, False
    try:
        for line in proc.stdout:
            kind, f, first, end = line.split()
            if kind == "flushed": confirmed = int(end)
            if kind == "flushing" and int(f) == kill_at:
                in_flight = (int(first), int(end))
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:          # kill as soon as the flush's first temporary file exists
                    if any(p.name.endswith(".tmp") for p in root.rglob(".*")):
                        saw_tmp = True
                        break
                    time.sleep(0.0005)
                os.kill(proc.pid, signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    assert in_flight is not None and confirmed == kill_at * per_flush
    assert saw_tmp, "the writer was not caught mid-write"

    # no visible file is corrupt: each one reads completely on its own
    visible = sorted(p for p in root.rglob("*.parquet") if not p.name.startswith("."))
    for p in visible:
        t = pq.read_table(p)
        assert t.num_rows == pq.read_metadata(p).num_rows > 0
    pool = ParquetPool(root)
    assert len(pool.folder.temp_files()) >= 1                        # the killed write's leftovers stay hidden
    got = pool.query()
    steps = got.step.to_numpy()
    assert len(np.unique(steps)) == len(steps)                       # nothing twice
    assert set(range(confirmed)) <= set(steps.tolist())              # every flushed record is there
    assert set(steps.tolist()) <= set(range(in_flight[1]))           # and nothing that was never written
    extra = sorted(set(steps.tolist()) - set(range(confirmed)))      # a killed flush lands as whole files or not at all
    days = {str((w.T0 + pd.Timedelta(seconds=1.5 * k)).date()) for k in range(*in_flight)}
    assert len(days) == 2                                            # the killed flush spans two files
    by_day = {}
    for k in range(*in_flight): by_day.setdefault(str((w.T0 + pd.Timedelta(seconds=1.5 * k)).date()), []).append(k)
    assert extra in ([], *by_day.values(), sorted(sum(by_day.values(), []))), extra[:5]
    # every stored value is the one the writer computed
    assert list(got.index) == [w.T0 + pd.Timedelta(seconds=1.5 * k) for k in steps]
    np.testing.assert_array_equal(got.reward.to_numpy(), -steps.astype(np.float32))
    np.testing.assert_array_equal(np.stack(got.state.to_list())[:, 7, 0], (steps % 200).astype(np.float32))
    assert got.index.tz.key == "Europe/Berlin"
    assert len(pd.read_parquet(root)) == len(got)                    # pandas reads the folder as it is
    # and the pool can be written again after the crash
    with ParquetPool(root, w.META) as again:
        again.append(w.records(10_000, 10_010))
    assert ParquetPool(root).count() == len(got) + 10
    # a writer that opens once the leftovers are old enough to be nobody's finishes or quarantines them
    ParquetPool(root, w.META, temp_grace_s=0).close()
    assert pool.folder.temp_files() == []
    after = ParquetPool(root).query().step.to_numpy()
    assert len(np.unique(after)) == len(after) and set(range(confirmed)) <= set(after.tolist())
    recovered = sorted(set(after.tolist()) - set(steps.tolist()) - set(range(10_000, 10_010)))
    assert sorted(extra + recovered) in ([], *by_day.values(), sorted(sum(by_day.values(), []))), recovered[:5]


# --- time zones ---------------------------------------------------------------------------------------------------
SITES = [("truck-ber", "Europe/Berlin", "2026-03-29T01:00:00Z"),      # spring forward
         ("truck-nyc", "America/New_York", "2026-11-01T06:00:00Z"),   # fall back
         ("truck-syd", "Australia/Sydney", "2026-04-04T16:00:00Z")]   # fall back, southern hemisphere
QUERY_ZONES = ["UTC", "Asia/Tokyo", "Asia/Kathmandu", "America/St_Johns", "Pacific/Chatham", "Europe/Berlin"]


@pytest.fixture(scope="module")
def tz_pool(tmp_path_factory):
    "Three sites, each with records every 7.5 s (and a random jitter) from 40 min before to 40 min after its DST change."
    root = tmp_path_factory.mktemp("tz") / "pool"
    rng = np.random.default_rng(42)
    truth = []   # (vehicle, aware UTC datetime) computed with the standard library only
    for vehicle, zone, change in SITES:
        meta = field_truck_meta(vehicle, "d", zone)
        c = datetime.fromisoformat(change.replace("Z", "+00:00"))
        us = [int((c - timedelta(minutes=40)).timestamp() * 1e6) + k * 7_500_000 + int(rng.integers(0, 1000)) for k in range(640)]
        n = len(us)
        state = np.zeros((n, 30, 3), np.float32)
        recs = records_from_arrays(meta, timestamp=pd.to_datetime(us, unit="us", utc=True), episode_start=pd.to_datetime(us[0], unit="us", utc=True),
                                   step=np.arange(n), state=state, action=np.zeros((n, 4, 17), np.float32),
                                   reward=np.zeros(n, np.float32), next_state=state, terminal=np.arange(n) == n - 1)
        with ParquetPool(root, meta, flush_every=100) as pool:
            for i in range(0, n, 37): pool.append(recs.iloc[i:i + 37])
        truth += [(vehicle, datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=u)) for u in us]
    return root, truth


def test_queries_return_exactly_the_right_rows_across_time_zones(tz_pool):
    root, truth = tz_pool
    pool = ParquetPool(root)
    rng = np.random.default_rng(7)
    for i in range(40):
        vehicle, zone, change = SITES[i % 3]
        qz = zoneinfo.ZoneInfo(QUERY_ZONES[i % len(QUERY_ZONES)])
        c = datetime.fromisoformat(change.replace("Z", "+00:00"))
        lo = c + timedelta(seconds=float(rng.uniform(-45 * 60, 30 * 60)))
        hi = lo + timedelta(seconds=float(rng.uniform(1, 20 * 60)))
        lo_q, hi_q = lo.astimezone(qz), hi.astimezone(qz)              # the window as a user in another zone writes it
        want = sorted(t for v, t in truth if lo <= t < hi)
        got = pool.query(start=pd.Timestamp(lo_q), end=pd.Timestamp(hi_q))
        # compared in UTC: by PEP 495 an aware datetime in a repeated hour never equals one of another zone
        assert [t.to_pydatetime() for t in got.index.tz_convert("UTC")] == want, (vehicle, lo_q, hi_q)
        mine = sorted(t for v, t in truth if v == vehicle and lo <= t < hi)
        assert pool.count(vehicle=vehicle, start=lo_q.isoformat(), end=hi_q.isoformat()) == len(mine)
    # a window that straddles the local clock change, given in local wall time with explicit offsets
    berlin = pool.query(vehicle="truck-ber", start="2026-03-29T01:59:00+01:00", end="2026-03-29T03:01:00+02:00")
    want = [t for v, t in truth if v == "truck-ber" and datetime(2026, 3, 29, 0, 59, tzinfo=timezone.utc) <= t < datetime(2026, 3, 29, 1, 1, tzinfo=timezone.utc)]
    assert len(berlin) == len(want) == 16                              # two minutes at 7.5 s: 16 records, by hand
    assert str(berlin.index.tz) == "Europe/Berlin" and {t.hour for t in berlin.index} == {1, 3}


@pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.reset_index")   # inside dask
def test_dask_and_pandas_see_the_same_rows_as_the_pool(tz_pool):
    dd = pytest.importorskip("dask.dataframe", reason="dask[dataframe] is a dev requirement of the storage tests")
    root, truth = tz_pool
    key = lambda vs, ts, ss: sorted(zip(map(str, vs), (pd.Timestamp(t).tz_convert("UTC") for t in ts), map(int, ss)))
    mine = ParquetPool(root).query()
    want = key(mine.vehicle, mine.index, mine.step)
    assert len(want) == len(truth) == 3 * 640
    d = dd.read_parquet(str(root)).compute()
    assert key(d.vehicle, d.timestamp, d.step) == want
    p = pd.read_parquet(root)
    assert key(p.vehicle, p.timestamp, p.step) == want
    # partition pruning through Dask's own filters gives the pool's per-vehicle rows
    d_ny = dd.read_parquet(str(root), filters=[("vehicle", "==", "truck-nyc")]).compute()
    ny = ParquetPool(root).query(vehicle="truck-nyc")
    assert key(d_ny.vehicle, d_ny.timestamp, d_ny.step) == key(ny.vehicle, ny.index, ny.step)
    np.testing.assert_array_equal(np.stack(d_ny.sort_values("timestamp").state.to_list()).reshape(-1, 30, 3), np.stack(ny.state.to_list()))
