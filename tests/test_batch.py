"`tspace batch embed` (chunk files only: no LanceDB) killed after its first committed chunk, then rerun: the output equals an uninterrupted run's and no chunk is committed twice."
import json, subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from cli_helpers import TSPACE, clean_env
from servers import wait_until

EPISODES, RECORDS = 24, 3   # one chunk per episode with --chunk-records 3


def _pool(root: Path) -> str:
    from tspace.data.core import field_truck_meta, records_from_arrays
    from tspace.storage.pool.parquet import ParquetPool
    url = str(root / "pool")
    with ParquetPool(url, field_truck_meta("truck-9", "kim"), flush_every=10**6) as pool:
        for e in range(EPISODES):
            t0 = pd.Timestamp("2026-06-01T00:00:00Z") + pd.Timedelta(minutes=e)
            s = (np.random.default_rng(e).uniform(0, 1, (RECORDS, *pool.meta.state.shape)) * [80, 1, 1]).astype(np.float32)
            pool.append_episode(records_from_arrays(
                pool.meta, timestamp=t0 + pd.to_timedelta(1.5 * np.arange(1, RECORDS + 1), unit="s"), episode_start=t0,
                step=np.arange(RECORDS), state=s, action=np.zeros((RECORDS, *pool.meta.action.shape)), reward=np.zeros(RECORDS),
                next_state=s, terminal=np.arange(RECORDS) == RECORDS - 1))
    return url


def _batch(url: str, out: Path) -> list[str]:
    return [TSPACE, "batch", "embed", "--data", url, "--points", "4", "--chunk-records", str(RECORDS), "--workers", "1",
            "--quiet", "--no-table", "--out", str(out)]


def test_a_killed_batch_resumes_without_doing_any_chunk_twice(tmp_path):
    from tspace.dist.batch import Ledger, read_output
    url = _pool(tmp_path)
    from tspace.cli.main import invoke
    ref = invoke(*_batch(url, tmp_path / "ref")[1:])   # the uninterrupted run, in this process
    assert ref.code == 0, ref.err[-3000:]
    assert f"{EPISODES} chunk(s): 0 done before, {EPISODES} done now" in ref.out, ref.out

    out = tmp_path / "out"
    led = Ledger(out)
    log = (tmp_path / "killed.log").open("w")
    proc = subprocess.Popen(_batch(url, out), stdout=log, stderr=subprocess.STDOUT, env=clean_env())
    try:
        wait_until(lambda: led.done() or proc.poll() is not None, timeout=60, what="the first committed chunk")
        proc.kill()
    finally:
        proc.wait(timeout=30)
    first = led.done()
    assert 1 <= len(first) < EPISODES, (len(first), (tmp_path / "killed.log").read_text()[-2000:])
    pids = {led.entry(c)["pid"] for c in first}
    assert pids == {proc.pid}

    rerun = subprocess.run(_batch(url, out), capture_output=True, text=True, env=clean_env(), timeout=120)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"{EPISODES} chunk(s): {len(first)} done before, {EPISODES - len(first)} done now, 0 failed" in rerun.stdout, rerun.stdout
    entries = {c: led.entry(c) for c in led.done()}
    assert len(entries) == EPISODES
    assert all(e["pid"] == proc.pid for c, e in entries.items() if c in first)            # the killed run's commits were kept,
    assert all(e["pid"] != proc.pid for c, e in entries.items() if c not in first)        # the rerun did only the others
    assert sorted(p.name for p in (out / "chunks").iterdir()) == sorted(f"{c}.parquet" for c in entries)   # no partial or stray file
    assert not list(out.rglob("*.tmp"))
    got, want = read_output(out), read_output(tmp_path / "ref")
    assert len(got) == EPISODES * RECORDS
    pd.testing.assert_frame_equal(got, want)
