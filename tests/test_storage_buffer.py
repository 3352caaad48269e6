"""Collector/buffer concurrency: several inference threads collect while a training thread updates and samples.

Every collected item must end up in exactly one place: in the buffer, evicted or discarded by the buffer's policy
(counted), or dropped by the overflowing collector (counted). Items carry their id in the reward, so the buffer's
content can be checked item by item."""
import threading, time

import numpy as np

from tspace.storage.buffer import RandomReplacementBuffer, SequentialBuffer
from tspace.system.errors import StorageError


def item(i):
    return {"s": np.full((3, 3), i % 97, np.float32), "a": np.zeros((4, 17), np.float32), "r": float(i),
            "s2": np.full((3, 3), i % 97 + 1, np.float32), "terminal": False}


def run(buffer, n_threads=6, per_thread=4000, max_pending=32, sample=True):
    col = buffer.acquire_collector(max_pending=max_pending)
    start = threading.Barrier(n_threads + 2)   # producers, trainer, and this thread
    done = threading.Event()
    updates, taken, errors = [0], [0], []

    def produce(k):
        start.wait()
        for j in range(per_thread):
            col.collect(item(k * per_thread + j))
            if j % 500 == 0: time.sleep(0)              # let the scheduler interleave

    def train():
        start.wait()
        try:
            while not done.is_set() or col.pending:
                taken[0] += buffer.update()
                updates[0] += 1
                if sample and len(buffer): buffer.sample(16)
        except Exception as e:                          # surfaced below, never a silently dead thread
            errors.append(e)

    producers = [threading.Thread(target=produce, args=(k,)) for k in range(n_threads)]
    trainer = threading.Thread(target=train)
    for t in [*producers, trainer]: t.start()
    start.wait()
    for t in producers: t.join()
    done.set()
    trainer.join(timeout=60)
    assert not trainer.is_alive() and not errors, errors
    return col, taken[0], updates[0]


def test_sequential_buffer_every_item_is_stored_or_counted_as_dropped():
    n = 6 * 4000
    buf = SequentialBuffer(n)                             # room for everything: only the collector can lose items
    col, taken, updates = run(buf)
    ids = buf.transitions()["r"].astype(np.int64)
    assert col.collected == n and col.pending == 0
    assert col.dropped > 0, "the stress test did not overflow the collector"
    assert len(ids) + col.dropped == n                    # exact accounting
    assert len(set(ids.tolist())) == len(ids)             # nothing stored twice
    assert set(ids.tolist()) <= set(range(n))
    assert taken == col.taken == len(ids) and buf.invalid == 0 and updates > 1
    for k in range(6):                                    # each producer's survivors keep their order (FIFO)
        mine = ids[(ids >= k * 4000) & (ids < (k + 1) * 4000)]
        assert (np.diff(mine) > 0).all()
    s = buf.transitions()
    np.testing.assert_array_equal(s["s"][:, 0, 0], (ids % 97).astype(np.float32))   # each row stayed whole


def test_small_buffers_account_for_evicted_and_discarded_items():
    for buf in (SequentialBuffer(500), RandomReplacementBuffer(500, replace_prob=0.3, seed=1)):
        col, taken, _ = run(buf, max_pending=2000, sample=False)
        ids = buf.transitions()["r"].astype(np.int64)
        assert len(ids) == min(500, taken) and len(set(ids.tolist())) == len(ids)
        assert col.collected == taken + col.dropped       # what the collector did not drop, the buffer took
        assert buf.added == taken == len(buf) + buf.evicted + buf.discarded
        if isinstance(buf, RandomReplacementBuffer) and taken - 500 >= 2000:
            offered = taken - 500                         # items that arrived with the buffer full
            sd = (0.3 * 0.7 / offered) ** 0.5             # binomial standard deviation of the discarded share
            assert abs(buf.discarded / offered - 0.7) < 5 * sd, (buf.discarded, offered)


def test_only_one_thread_can_acquire_the_collector():
    buf = SequentialBuffer(10)
    got, refused = [], []
    barrier = threading.Barrier(8)

    def grab():
        barrier.wait()
        try: got.append(buf.acquire_collector())
        except StorageError as e: refused.append(str(e))

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
    assert len(got) == 1 and len(refused) == 7
    assert "collector was already acquired" in refused[0]


def test_collect_is_cheap():
    buf = SequentialBuffer(10)
    col = buf.acquire_collector(max_pending=1000)
    it = item(1)
    t = time.perf_counter()
    for _ in range(100_000): col.collect(it)
    per_call = (time.perf_counter() - t) / 100_000
    assert per_call < 20e-6, f"collect took {per_call * 1e6:.1f} us per call"   # typically about 0.3 us
    assert col.dropped == 99_000
