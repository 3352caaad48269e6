"""Child program of the SIGKILL test in test_storage_pool.py: appends records to a ParquetPool and reports each flush.

Usage: python storage_writer.py ROOT RECORDS_PER_FLUSH FLUSHES
Prints `flushing F FIRST END` before flush F (records with steps FIRST..END-1) and `flushed F FIRST END` after it.
Record k has timestamp T0 + 1.5 s * k, reward -k and velocity k % 200 in every sample, so the parent can check
every stored value without sharing state with this process.
"""
import sys

import numpy as np
import pandas as pd

from tspace.data.core import cloud_truck_meta, records_from_arrays
from tspace.storage.pool.parquet import ParquetPool

T0 = pd.Timestamp("2026-03-28T22:30:00Z")   # with 1500 records per flush, flush 2 crosses midnight UTC: two files
META = cloud_truck_meta("truck-k", "driver-k", "Europe/Berlin")


def records(first: int, end: int) -> pd.DataFrame:
    steps = np.arange(first, end)
    n = len(steps)
    state = np.zeros((n, *META.state.shape), np.float32)
    state[:, :, 0] = (steps % 200)[:, None]
    return records_from_arrays(META, timestamp=T0 + pd.to_timedelta(steps * 1.5, unit="s"), episode_start=T0, step=steps,
                               state=state, action=np.full((n, *META.action.shape), -0.5, np.float32),
                               reward=-steps.astype(np.float32), next_state=state, terminal=np.zeros(n, bool))


if __name__ == "__main__":
    root, per_flush, flushes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    pool = ParquetPool(root, META, flush_every=10**9)
    for f in range(flushes):
        first, end = f * per_flush, (f + 1) * per_flush
        pool.append(records(first, end))
        print(f"flushing {f} {first} {end}", flush=True)
        pool.flush()
        print(f"flushed {f} {first} {end}", flush=True)
    pool.close()
