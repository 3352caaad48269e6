"""`tspace batch infer` throughput against a plain loop (read the pool with pandas, call `agent.act` per record), on Dask threads
and on a 2-worker LocalCluster; then the crash test: the batch killed at random points 5 times, rerun each time; the final output
must equal an uninterrupted run's, with every chunk committed exactly once.  `--records N` (default 2000)."""
import argparse, os, random, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np, pandas as pd

def make_pool(url, records, per_episode=100):
    from tspace.data.core import field_truck_meta, records_from_arrays
    from tspace.storage.pool.parquet import ParquetPool
    with ParquetPool(url, field_truck_meta("bench-truck", "bench"), flush_every=10**6) as pool:
        for e in range(records // per_episode):
            t0 = pd.Timestamp("2026-06-01T00:00:00Z") + pd.Timedelta(hours=e); n = per_episode
            s = (np.random.default_rng(e).uniform(0, 1, (n, *pool.meta.state.shape)) * [80, 1, 1]).astype(np.float32)
            pool.append_episode(records_from_arrays(pool.meta, timestamp=t0 + pd.to_timedelta(1.5 * np.arange(1, n + 1), unit="s"),
                episode_start=t0, step=np.arange(n), state=s, action=np.zeros((n, *pool.meta.action.shape)), reward=np.zeros(n),
                next_state=s, terminal=np.arange(n) == n - 1))

def main():
    ap = argparse.ArgumentParser(description=__doc__); ap.add_argument("--records", type=int, default=4000); a = ap.parse_args()
    from tspace.agent.dpg import make_agent, load_agent
    from tspace.config.storage import StorageConfig
    from tspace.data.core import field_truck_meta, episode_arrays
    from tspace.dist.batch import BatchJob, run_batch, read_output, Ledger
    from tspace.storage.pool.parquet import ParquetPool
    root = Path(tempfile.mkdtemp()); url = str(root / "pool"); make_pool(url, a.records)
    make_agent(field_truck_meta(), {"kind": "ddpg", "hidden_units": (64, 64)}).save(root / "ckpt")
    agent = load_agent(root / "ckpt")
    t0 = time.perf_counter()
    df = ParquetPool(url).query()
    acts = [agent.act(s, explore=False) for s in df.state]
    loop = len(acts) / (time.perf_counter() - t0)
    job = lambda out: BatchJob(StorageConfig(url=url), "infer", str(root / out), checkpoint=str(root / "ckpt"), chunk_records=200)
    r = run_batch(job("threads"), progress=False); threads = r["records"] / r["seconds"]
    r = run_batch(job("cluster"), "local", 2, progress=False); cluster = r["records"] / r["seconds"]
    print(f"{a.records} records: plain loop (pandas + agent.act) {loop:,.0f} records/s | batch infer, Dask threads {threads:,.0f} records/s "
          f"({threads / loop:.2f}x) | 2-worker LocalCluster {cluster:,.0f} records/s ({cluster / loop:.2f}x, worker start-up included)", flush=True)
    ref = read_output(root / "threads")
    out = root / "crash"; cmd = ["tspace", "batch", "infer", "--data", url, "--checkpoint", str(root / "ckpt"), "--out", str(out),
                                 "--chunk-records", "100", "--workers", "1", "--quiet"]
    rnd = random.Random(0); kills = []; interrupted = 0
    for k in range(5):        # each run is killed after 1-4 more commits, at a random moment inside the chunk that follows
        target = len(Ledger(out).done()) + rnd.randint(1, 4); p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while len(Ledger(out).done()) < target and p.poll() is None: time.sleep(0.005)
        time.sleep(rnd.uniform(0, 0.03))
        interrupted += p.poll() is None
        p.kill(); p.wait(); kills.append(len(Ledger(out).done()))
    r = subprocess.run(cmd, capture_output=True, text=True); done = Ledger(out).done()
    pids = [Ledger(out).entry(c)["pid"] for c in done]
    try: pd.testing.assert_frame_equal(read_output(out), ref); same = True
    except AssertionError: same = False
    print(f"crash test: chunks committed after each of 5 kills {kills} ({interrupted} of 5 kills hit a running batch); "
          f"final rerun: {r.stdout.strip()}", flush=True)
    print(f"crash test: {len(done)} chunk(s) committed once each (ledger entries {len(pids)}, chunk files {len(list((out / 'chunks').glob('*.parquet')))}), "
          f"output equals uninterrupted run: {same}", flush=True)

if __name__ == "__main__": main()
