"""The Cruncher in supervised threads: a vehicle producer, a flash thread and the Cruncher worker
connected by the bounded queues of `dataflow.pipeline`, storing into a real Parquet pool.

Frame g starts at T0 + 2g s (4 samples at 2 Hz) with a constant current of 10 (g + 1) A at 600 V,
so its energy is 10 (g + 1) * 600 * 4 / 2 / 3600 = 10 (g + 1) / 3 Wh, and the record whose s' is
frame g has the reward -10 (g + 1) / 3 Wh. The scripted agent's n-th call returns A(n); the flash
thread applies each action 0.2 s after the end of the frame it was decided on, i.e. before the
middle of the next frame, so the record of each step carries the action decided on its state.
"""
import time

import numpy as np
import pandas as pd

from tspace.data.core import ActionSpec, ObservationMeta, StateSpec, default_signals
from tspace.dataflow.cruncher import Cruncher
from tspace.dataflow.pipeline import BlockingQueue, DropOldestQueue, HMIMessage, QueueFullError, flash_worker
from tspace.storage.buffer import SequentialBuffer
from tspace.storage.pool.parquet import ParquetPool
from tspace.system.errors import StorageError
from tspace.system.supervisor import Supervisor

META = ObservationMeta(vehicle="truck-7", driver="bo", timezone="America/New_York",
                       state=StateSpec(signals=default_signals(), frame_len=4, sample_hz=2.0),
                       action=ActionSpec(rows=2, columns=3))
T0 = pd.Timestamp("2024-03-10T01:00:00-05:00")
sec = lambda x: pd.Timedelta(seconds=x)

def start(g): return T0 + sec(2 * g)
def frame(g):
    idx = pd.date_range(start(g), periods=4, freq="500ms")
    return pd.DataFrame(dict(velocity=[float(g + j) for j in range(4)], thrust=[0.5] * 4, brake=[0.0] * 4,
                             current=[10.0 * (g + 1)] * 4, voltage=[600.0] * 4), index=idx)
def reward(g): return -10.0 * (g + 1) / 3          # reward of the step whose s' is frame g
def A(n): return np.full((2, 3), -0.05 * (n % 19 + 1), np.float32)

class ScriptedAgent:
    def __init__(self): self.calls = 0
    def act(self, obs):
        a = A(self.calls); self.calls += 1
        return a

class FlakyPool:
    "In-memory pool whose first `fail` appends raise."
    def __init__(self, fail=0): self.episodes, self.fail, self.flushed = [], fail, 0
    def append_episode(self, ep):
        if self.fail: self.fail -= 1; raise OSError("share went away")
        self.episodes.append(ep)
    def flush(self): self.flushed += 1

def episode(frames_, end):
    "Events and frames of one episode: begin dated just before the first frame, the end just after the last."
    return ([("event", HMIMessage("begin", start(frames_[0]) - sec(0.5)))] + [("frame", g) for g in frames_]
            + [("event", HMIMessage(end, start(frames_[-1]) + sec(1.9)))])

def make_run(pool, script, *, collector=None, flash_timeout=2.0, flasher=True, stop_after=None):
    "A supervisor with a producer replaying `script`, a flash thread and the Cruncher worker."
    frames, events = DropOldestQueue(64, name="frames"), BlockingQueue(16, timeout=2.0, name="events")
    flash = BlockingQueue(8 if flasher else 1, timeout=flash_timeout, name="flash")
    cr = Cruncher(META, ScriptedAgent(), pool, collector, flash, confirm_timeout=2.0, poll_s=0.01)
    sup = Supervisor("test", stop_timeout=5.0, poll=0.01)
    written = []
    def write(req):
        written.append(req)
        return req.decided_at + sec(0.1 if req.reset else 0.2)
    def producer(stop):
        for kind, x in script:
            if stop.is_set(): return
            if kind == "frame": frames.put(frame(x))
            else: events.put(x)
        if stop_after is not None:       # a stop request (as SIGINT would make) once the Cruncher saw every frame
            deadline = time.monotonic() + 5
            while cr.counts["frames"] < stop_after and time.monotonic() < deadline: time.sleep(0.01)
            sup.request_stop("test stop")
    sup.add_worker("vehicle", producer)
    if flasher: sup.add_worker("flasher", flash_worker, flash, write, cr.confirm)
    sup.add_worker("cruncher", cr.run, frames, events)
    sup.on_flush(cr.flush)
    return sup, cr, frames, written

def test_supervised_run_stores_expected_records(tmp_path):
    pool = ParquetPool(tmp_path / "pool", META, flush_every=1000)
    buf = SequentialBuffer(100)
    script = (episode(range(0, 6), "end_valid") + [("frame", g) for g in range(6, 9)]
              + episode(range(9, 13), "end_invalid") + episode(range(13, 18), "end_valid") + [("event", "exit")])
    sup, cr, frames, written = make_run(pool, script, collector=buf.acquire_collector())
    assert sup.run(install_signals=False) == 0, sup.failures
    assert frames.dropped == 0
    st = cr.stats()
    assert (st["frames"], st["frames_outside"], st["bad_frames"]) == (18, 3, 0)
    assert (st["episodes_stored"], st["episodes_discarded"], st["records_stored"], st["records_discarded"]) == (2, 1, 9, 3)
    assert len(written) == 3 + 15                  # a reset per begin, an action per frame in an episode
    assert st["flash_unconfirmed"] == 0

    stored = ParquetPool(tmp_path / "pool")         # a fresh reader: the records are on disk
    recs = stored.query()
    assert len(recs) == 9
    ep1, ep3 = recs[recs.episode_start == start(0) - sec(0.5)], recs[recs.episode_start == start(13) - sec(0.5)]
    assert (len(ep1), len(ep3)) == (5, 4)
    # expected values from the header: s' of record i of ep1 is frame i + 1, agent calls 0..5 in ep1, 10..14 in ep3
    np.testing.assert_allclose(ep1.reward.to_numpy(), [reward(g) for g in range(1, 6)], rtol=1e-6)
    np.testing.assert_allclose(ep3.reward.to_numpy(), [reward(g) for g in range(14, 18)], rtol=1e-6)
    for i in range(5): np.testing.assert_array_equal(ep1.action.iloc[i], A(i))
    for j in range(4): np.testing.assert_array_equal(ep3.action.iloc[j], A(10 + j))
    assert ep1.terminal.tolist() == [False] * 4 + [True] and ep3.terminal.tolist() == [False] * 3 + [True]
    assert list(ep3.index) == [start(g) + sec(1.5) for g in range(13, 17)]
    assert [s[0, 0] for s in ep3.state] == [13.0, 14.0, 15.0, 16.0]
    assert [s[0, 0] for s in ep3.next_state] == [14.0, 15.0, 16.0, 17.0]

    assert buf.update() == 9
    np.testing.assert_allclose(np.sort(buf.transitions()["r"]), np.sort([reward(g) for g in [*range(1, 6), *range(14, 18)]]),
                               rtol=1e-6)
    pool.close()

def test_stop_mid_episode_flushes_completed_episodes(tmp_path):
    pool = ParquetPool(tmp_path / "pool", META, flush_every=1000)
    script = episode(range(0, 6), "end_valid") + episode(range(9, 12), "end_valid")[:-1]   # the second never ends
    sup, cr, _, _ = make_run(pool, script, stop_after=9)
    assert sup.run(install_signals=False) == 0, sup.failures
    assert sup.stop_reason == "test stop"
    assert (cr.counts["episodes_stored"], cr.counts["episodes_abandoned"], cr.counts["records_discarded"]) == (1, 1, 2)
    assert len(ParquetPool(tmp_path / "pool").query()) == 5
    pool.close()

def test_pool_failure_stops_the_run_and_flush_keeps_the_episode():
    pool = FlakyPool(fail=1)
    sup, cr, _, _ = make_run(pool, episode(range(0, 4), "end_valid"))
    assert sup.run(install_signals=False) == 1
    (name, exc), = sup.failures
    assert name == "cruncher" and isinstance(exc, StorageError) and "share went away" in str(exc)
    assert [len(e) for e in pool.episodes] == [3]   # written by the flush callback after the failure
    assert cr.unwritten == [] and pool.flushed >= 1

def test_flash_queue_that_stays_full_stops_the_run():
    sup, cr, _, _ = make_run(FlakyPool(), episode(range(0, 4), "end_valid"), flasher=False, flash_timeout=0.05)
    assert sup.run(install_signals=False) == 1
    (name, exc), = sup.failures
    assert name == "cruncher" and isinstance(exc, QueueFullError)
    assert "flash queue full" in str(exc) and "FlashRequest was not queued" in str(exc)
