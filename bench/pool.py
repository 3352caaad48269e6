"""ParquetPool throughput and minibatch latency, next to a naive one-file-per-episode `DataFrame.to_parquet` baseline
measured in the same process on the same records.

Run: python bench/pool.py [--episodes 200] [--steps 100] [--batch 64] [--dir /tmp]   (not run by CI)

Prints, for the field truck's records (state 30 x 3, action 4 x 17, float32):
- records/s appended and flushed: ParquetPool fed whole episodes (flush_every 64, fsync on and off) and fed one
  record at a time (as the Cruncher does), against writing each episode with `to_parquet` (arrays flattened to lists,
  since pandas cannot write 2-D array cells);
- minibatch sample latency (median and p90 of `--batch` transitions): `ParquetPool.sample` cold (first call), while
  its file cache fills, and with every file cached, against reading the episode files that hold the sampled rows
  with `pd.read_parquet`; an in-memory `SequentialBuffer` for reference;
- reading everything back: `ParquetPool.query()` against `pd.read_parquet` of every episode file.
Ratios are baseline time / pool time, so above 1 means the pool is faster.
"""
import argparse, shutil, statistics, sys, tempfile, time
from pathlib import Path

import numpy as np
import pandas as pd

from tspace.data.core import field_truck_meta, records_from_arrays, episode_arrays
from tspace.storage.pool.parquet import ParquetPool


def make_episodes(meta, n_episodes, steps, seed=0):
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2026-03-28T22:00:00Z")
    eps = []
    for e in range(n_episodes):
        start = t0 + pd.Timedelta(minutes=5 * e)
        n = steps
        s = rng.uniform(0, 1, (n + 1, *meta.state.shape)).astype(np.float32)
        s[..., 0] *= 120
        eps.append(records_from_arrays(meta, timestamp=start + pd.to_timedelta(np.arange(1, n + 1) * 1.5, unit="s"),
                                       episode_start=start, step=np.arange(n), state=s[:-1],
                                       action=rng.uniform(-1, 1, (n, *meta.action.shape)).astype(np.float32),
                                       reward=-rng.uniform(0, 30, n).astype(np.float32), next_state=s[1:],
                                       terminal=np.arange(n) == n - 1))
    return eps


def flat(ep):
    "What a naive writer does: arrays to 1-D so pyarrow accepts them, index to a column."
    return ep.assign(**{c: [np.ravel(v) for v in ep[c]] for c in ("state", "action", "next_state")})


def timed(fn):
    t = time.perf_counter(); out = fn(); return time.perf_counter() - t, out


def latencies(fn, n):
    out = []
    for _ in range(n):
        t = time.perf_counter(); fn(); out.append(time.perf_counter() - t)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--episodes", type=int, default=200)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--dir", default=None, help="where to write (default: a temporary folder)")
    a = ap.parse_args(argv)
    meta = field_truck_meta("bench-truck", "bench-driver", "Europe/Berlin")
    eps = make_episodes(meta, a.episodes, a.steps)
    n = a.episodes * a.steps
    work = Path(tempfile.mkdtemp(prefix="tspace-bench-", dir=a.dir))
    print(f"{a.episodes} episodes x {a.steps} steps = {n} records (field truck), in {work}")
    print(f"python {sys.version.split()[0]}, pandas {pd.__version__}, numpy {np.__version__}\n")
    try:
        # --- writing ---
        def naive_write():
            d = work / "naive"; d.mkdir()
            for i, ep in enumerate(eps): flat(ep).to_parquet(d / f"episode-{i:05d}.parquet")
        def pool_write(name, durable):
            with ParquetPool(work / name, meta, durable=durable) as p:
                for ep in eps: p.append_episode(ep)
        t_naive, _ = timed(naive_write)
        t_pool, _ = timed(lambda: pool_write("pool", True))
        t_fast, _ = timed(lambda: pool_write("pool-nofsync", False))
        one = eps[: max(1, 2000 // a.steps)]
        n_one = sum(len(e) for e in one)
        def per_record():
            with ParquetPool(work / "pool-per-record", meta) as p:
                for ep in one:
                    for k in range(len(ep)): p.append(ep.iloc[k:k + 1])
        t_rec, _ = timed(per_record)
        print("append + flush                                 records/s   vs naive")
        print(f"  naive to_parquet, one file per episode     {n / t_naive:10.0f}     1.00")
        print(f"  ParquetPool, whole episodes, fsync         {n / t_pool:10.0f}   {t_naive / t_pool:6.2f}")
        print(f"  ParquetPool, whole episodes, no fsync      {n / t_fast:10.0f}   {t_naive / t_fast:6.2f}")
        print(f"  ParquetPool, one record per append, fsync  {n_one / t_rec:10.0f}   {(t_naive / n) / (t_rec / n_one):6.2f}"
              f"   ({n_one} records)")

        # --- sampling ---
        files = sorted((work / "naive").glob("*.parquet"))
        lengths = np.array([len(e) for e in eps])
        ends = np.cumsum(lengths)
        rng = np.random.default_rng(1)
        def naive_sample():
            u = rng.integers(0, ends[-1], a.batch)
            which = np.searchsorted(ends, u, side="right")
            rows = u - (ends[which] - lengths[which])
            out = {k: [] for k in ("s", "a", "r", "s2", "terminal")}
            cache = {}
            for f, r in zip(which, rows):
                if f not in cache: cache[f] = pd.read_parquet(files[f])
                row = cache[f].iloc[r]
                out["s"].append(np.asarray(row.state, np.float32).reshape(meta.state.shape))
                out["a"].append(np.asarray(row.action, np.float32).reshape(meta.action.shape))
                out["r"].append(np.float32(row.reward))
                out["s2"].append(np.asarray(row.next_state, np.float32).reshape(meta.state.shape))
                out["terminal"].append(np.float32(row.terminal))
            return {k: np.stack(v) for k, v in out.items()}
        pool = ParquetPool(work / "pool")
        t_cold, b = timed(lambda: pool.sample(a.batch, rng=rng))
        assert b["s"].shape == (a.batch, *meta.state.shape)
        warming = latencies(lambda: pool.sample(a.batch, rng=rng), 10)
        pool.sample(20 * n, rng=rng)                      # touches every file: from here on all are cached
        warm = latencies(lambda: pool.sample(a.batch, rng=rng), a.repeats)
        naive = latencies(naive_sample, a.repeats)
        from tspace.storage.buffer import SequentialBuffer
        buf = SequentialBuffer(n)
        for ep in eps: buf.add(ep)
        mem = latencies(lambda: buf.sample(a.batch, rng=rng), a.repeats)
        med = statistics.median
        p90 = lambda x: float(np.quantile(x, 0.9))
        print(f"\nsample {a.batch} transitions                     median ms    p90 ms   vs naive (median)")
        print(f"  naive: read the episode files it needs    {med(naive) * 1e3:9.2f} {p90(naive) * 1e3:9.2f}       1.00")
        print(f"  ParquetPool.sample, first call (cold)     {t_cold * 1e3:9.2f} {'':>9}   {med(naive) / t_cold:8.2f}")
        print(f"  ParquetPool.sample, next 10 calls         {med(warming) * 1e3:9.2f} {p90(warming) * 1e3:9.2f}   {med(naive) / med(warming):8.2f}")
        print(f"  ParquetPool.sample, all files cached      {med(warm) * 1e3:9.2f} {p90(warm) * 1e3:9.2f}   {med(naive) / med(warm):8.2f}")
        print(f"  (in-memory SequentialBuffer.sample        {med(mem) * 1e3:9.3f} {p90(mem) * 1e3:9.3f}   {med(naive) / med(mem):8.0f})")

        # --- reading everything back ---
        t_nread, df = timed(lambda: pd.concat([pd.read_parquet(f) for f in files]))
        t_query, q = timed(lambda: ParquetPool(work / "pool").query())
        assert len(df) == len(q) == n
        t_arr, arrs = timed(lambda: episode_arrays(q))
        print(f"\nread all {n} records                         seconds    vs naive")
        print(f"  naive: pd.read_parquet of every file      {t_nread:9.3f}      1.00   (flat lists, no checks)")
        print(f"  ParquetPool.query() (decoded, validated)  {t_query:9.3f}   {t_nread / t_query:7.2f}   "
              f"(+{t_arr:.3f} s to stack into arrays)")
        files_pool = len(list((work / "pool").rglob("*.parquet")))
        print(f"\nfiles: naive {len(files)}, ParquetPool {files_pool} (flush_every 64, one file per flush and UTC date)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
