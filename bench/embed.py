"""Nearest-neighbour queries on an embeddings table: LanceDB with its IVF-PQ index against an exact NumPy scan, same vectors, same run.

Prints query latency p50/p99 (ms) at 1e4, 1e5, 1e6 stored vectors (24 values each, as `SignalEmbedder(points=8)` gives),
and the index's recall@10 against the exact result. `--quick`: 1e4 only.
"""
import argparse, sys, tempfile, time
import numpy as np, pandas as pd
from tspace.storage.embed import EmbeddingTable

def run(n: int, dim: int = 24, queries: int = 100):
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    keys = pd.DataFrame({"vehicle": "v", "driver": "d", "episode_start": pd.Timestamp("2026-01-01T00:00:00Z"), "step": np.arange(n),
                         "timestamp": pd.Timestamp("2026-01-01T00:00:00Z") + pd.to_timedelta(np.arange(n), "s")})
    t = EmbeddingTable(tempfile.mkdtemp(), "bench", index_threshold=min(n, 10_000))
    t0 = time.perf_counter(); t.add(keys, vecs); build = time.perf_counter() - t0
    q = vecs[rng.integers(0, n, queries)] + rng.normal(0, 0.1, (queries, dim)).astype(np.float32)
    lance, exact, recall = [], [], []
    for x in q:
        t0 = time.perf_counter(); hit = t.search(x, 10); lance.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); d = np.einsum("ij,ij->i", vecs - x, vecs - x); top = np.argpartition(d, 10)[:10]; exact.append(time.perf_counter() - t0)
        recall.append(len(set(hit.step) & set(top.tolist())) / 10)
    p = lambda a, k: 1e3 * np.percentile(a, k)
    print(f"{n:>9,d} vectors: add+index {build:6.1f} s | LanceDB IVF-PQ p50 {p(lance, 50):6.2f} ms p99 {p(lance, 99):6.2f} ms | "
          f"NumPy exact p50 {p(exact, 50):6.2f} ms p99 {p(exact, 99):6.2f} ms | exact/LanceDB p50 {np.median(exact) / np.median(lance):5.2f}x | "
          f"recall@10 {np.mean(recall):.3f}", flush=True)

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    sizes = [10_000] if ap.parse_args().quick else [10_000, 100_000, 1_000_000]
    for n in sizes: run(n)
