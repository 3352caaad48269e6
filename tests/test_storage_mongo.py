"""MongoPool end to end: against mongomock (an in-process imitation of the server, a dev requirement) in every run,
and against a real MongoDB server when TSPACE_TEST_MONGO_URL is set (e.g. mongodb://127.0.0.1:27017)."""
import os, uuid

import numpy as np
import pandas as pd
import pytest

from tspace.data.core import field_truck_meta, cloud_truck_meta, records_from_arrays
from tspace.storage.pool.mongo import MongoPool
from tspace.system.errors import NaiveTimestampError, StorageError

BER = field_truck_meta("truck-ber", "anna", "Europe/Berlin")
NYC = cloud_truck_meta("truck-nyc", "bo", "America/New_York")


def episode(meta, start, n, dt_s=1.5):
    "Records with velocity = step, reward = -step; microsecond timestamps that BSON dates alone would round."
    t0 = pd.Timestamp(start)
    steps = np.arange(n)
    us = t0.value // 1000 + (steps * dt_s * 1e6).astype(np.int64) + 123
    state = np.zeros((n, *meta.state.shape), np.float32); state[:, :, 0] = steps[:, None]
    return records_from_arrays(meta, timestamp=pd.to_datetime(us, unit="us", utc=True), episode_start=t0, step=steps, state=state,
                               action=np.full((n, *meta.action.shape), -0.5, np.float32), reward=-steps.astype(np.float32),
                               next_state=state, terminal=steps == n - 1)


def exercise(make_pool):
    "The checks shared by the mock and the real server; `make_pool(meta)` opens a pool on one fresh database."
    ep_ber = episode(BER, "2026-03-29T00:59:40Z", 20)      # across the Berlin clock change at 01:00 UTC
    ep_nyc = episode(NYC, "2026-11-01T05:59:55Z", 8)       # across the New York one at 06:00 UTC
    with make_pool(BER) as p:
        p.flush_every = 7
        for i in range(0, 20, 3): p.append(ep_ber.iloc[i:i + 3])
        assert p.count() == 20                             # written and pending together
    with make_pool(NYC) as p: p.append_episode(ep_nyc)
    ro = make_pool(None)
    back = ro.query(vehicle="truck-ber")
    assert list(back.index) == list(ep_ber.index) and back.index.tz.key == "Europe/Berlin"
    np.testing.assert_array_equal(np.stack(back.state.to_list()), np.stack(ep_ber.state.to_list()))
    assert back.reward.tolist() == ep_ber.reward.tolist() and back.terminal.tolist() == ep_ber.terminal.tolist()
    # [02:59:55+02:00, 03:00:05+02:00) = [00:59:55Z, 01:00:05Z); Berlin step k is at 00:59:40Z + 1.5 s * k: steps 10..16
    q = ro.query(start="2026-03-29T02:59:55+02:00", end="2026-03-29T03:00:05+02:00")
    assert q.step.tolist() == [10, 11, 12, 13, 14, 15, 16]
    # 01:00 EST = 06:00Z; New York steps are at 05:59:55Z + 1.5 s * k, so steps 4..7 (06:00:01 .. 06:00:05.5)
    assert ro.count(vehicle="truck-nyc", start="2026-11-01T01:00:00-05:00") == 4
    assert ro.count() == 28 and ro.count(driver="bo", episode_start=pd.Timestamp("2026-11-01T01:59:55-04:00")) == 8
    e = ro.episodes()
    assert e[["vehicle", "driver", "records", "terminal"]].values.tolist() == [["truck-ber", "anna", 20, True], ["truck-nyc", "bo", 8, True]]
    assert e["first"].iloc[0] == ep_ber.index[0] and e["last"].iloc[1] == ep_nyc.index[-1]
    b = ro.sample(5, rng=0, vehicle="truck-ber")
    np.testing.assert_array_equal(b["r"], -b["s"][:, 0, 0])
    with pytest.raises(StorageError, match="different state/action shapes"): ro.sample(3)
    with pytest.raises(NaiveTimestampError): ro.query(start="2026-03-29T02:00")
    ro.close()


def test_mongo_pool_on_mongomock():
    mongomock = pytest.importorskip("mongomock", reason="mongomock (a dev requirement) imitates a MongoDB server in-process")
    client = mongomock.MongoClient(tz_aware=True)
    db = f"tspace_test_{uuid.uuid4().hex[:8]}"
    # mongomock cannot create time-series collections; the plain-collection mode stores the same documents
    exercise(lambda meta: MongoPool(None, meta, client=client, database=db, timeseries=False))
    rec = client[db]["records"].find_one({"series.vehicle": "truck-ber", "step": 0})
    assert rec["t_us"] % 1000 == 123 and rec["timestamp"].microsecond % 1000 == 0   # exact integer, ms date
    assert client[db]["episodes"].count_documents({}) == 2


def test_mongo_pool_on_a_real_server():
    url = os.environ.get("TSPACE_TEST_MONGO_URL")
    if not url:
        pytest.skip("TSPACE_TEST_MONGO_URL is not set: no MongoDB server to test against "
                    "(set it to e.g. mongodb://127.0.0.1:27017 to run this test)")
    db = f"tspace_test_{uuid.uuid4().hex[:8]}"
    pools = []

    def make(meta):
        p = MongoPool(url, meta, database=db, username=os.environ.get("TSPACE_STORAGE__USERNAME"),
                      password=os.environ.get("TSPACE_STORAGE__PASSWORD"))
        pools.append(p)
        return p
    try:
        exercise(make)
        info = make(None).db["records"].options()
        assert info.get("timeseries", {}).get("timeField") == "timestamp"
    finally:
        pools[-1].client.drop_database(db)
        for p in pools: p.client.close()
