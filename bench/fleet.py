"""The fleet layer against agentlace 0.1.4 (the library tspace's `dist` replaces), side by side in one run, on loopback.

Run: python bench/fleet.py [--records 2000] [--batch 50] [--quick]   (not run by CI)
agentlace is installed apart from tspace's environment, e.g.
    python -m venv --system-site-packages /tmp/benchenv
    /tmp/benchenv/bin/pip install --no-deps ../shared/peers/agentlace-0.1.4-76984f9.tar.gz
    /tmp/benchenv/bin/pip install lz4 typing_extensions opencv-python-headless
    /tmp/benchenv/bin/python bench/fleet.py
Without agentlace the tspace figures are printed alone.

Prints:
- trainer ingest: records per second the trainer server stores from 1, 2, 4 and 8 client processes, each sending
  `--records` records of the field truck's shape (state 30 x 3, action 4 x 17, float32) in batches of `--batch`;
  tspace stores them durably in a Parquet pool (fsync) and acknowledges after the flush, agentlace keeps them in its
  in-memory QueuedDataStore (pickle + lz4 over REQ/REP); the ratio is tspace / agentlace (above 1: tspace faster);
  each run checks 0 lost and 0 duplicated records;
- weight broadcast: time until all of k = 1, 4, 16 clients hold a new version of a DDPG actor's weights (90-256-256-68);
- inference: p50/p99 latency and throughput of `act` with 1, 4 and 16 client processes against the same NumPy actor
  called locally, and against the transport's floor measured the same way: a bare pyzmq echo thread answering the
  same messages with a fixed action envelope;
- fleet (`--parts fleet`, needs Ray): episodes per wall-clock minute reaching the learner with 1, 2 and 4 simulated
  trucks on a local Ray (`dist.fleet.run_fleet`, a DDPG learner of 64-64 units), counted from the moment every truck
  actor is up; efficiency = rate(N) / (N x rate(1)), the 1-truck run of the same invocation as the baseline. The
  trucks, the learner and Ray share this machine's cores, so the gain is bounded by them.
agentlace's servers bind every interface; here they are bound to 127.0.0.1 so that nothing leaves this host.
"""
import argparse, multiprocessing as mp, statistics, sys, tempfile, threading, time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))    # the tests' helpers, as bench/soak.py does
from servers import free_port

CTX = mp.get_context("spawn")
ACTOR_SIZES = (90, 256, 256, 68)


def dist_config(**kw):
    from tspace.config.dist import DistConfig
    return DistConfig(trainer_port=free_port(), weights_port=free_port(), inference_port=free_port(), **kw)


def batches(vehicle: str, n: int, batch: int) -> list:
    "The record DataFrames a client sends: `n` records of the field truck in batches of `batch`, steps 0..n-1."
    import pandas as pd
    from tspace.data.core import field_truck_meta, records_from_arrays
    meta = field_truck_meta(vehicle=vehicle, driver="d")
    rng = np.random.default_rng(0)
    t0 = pd.Timestamp("2026-06-01T08:00:00Z")
    out = []
    for first in range(0, n, batch):
        k = min(batch, n - first)
        steps = np.arange(first, first + k)
        s = rng.uniform(0, 1, (k, 30, 3)).astype(np.float32)
        out.append(records_from_arrays(meta, timestamp=t0 + pd.to_timedelta(steps + 1, "s"), episode_start=t0, step=steps,
                                       state=s, action=rng.uniform(-1, 1, (k, 4, 17)).astype(np.float32),
                                       reward=-rng.uniform(0, 3, k).astype(np.float32), next_state=s, terminal=np.zeros(k, bool)))
    return meta, out


# --- trainer ingest: tspace --------------------------------------------------------------------------
def tspace_client(cfg_json, vehicle, n, batch, ready, go):
    from tspace.config.dist import DistConfig
    from tspace.dist.trainer import TrainerClient
    meta, frames = batches(vehicle, n, batch)
    client = TrainerClient(vehicle, meta, DistConfig.model_validate_json(cfg_json)).connect(60)
    ready.put(vehicle)
    go.wait()
    for f in frames: client.send(f, timeout=120)
    assert client.wait_acked(300), client
    client.close()


def tspace_ingest(n_clients, n, batch) -> tuple[float, str]:
    from tspace.config.storage import StorageConfig
    from tspace.data.core import field_truck_meta
    from tspace.dist.trainer import TrainerServer
    from tspace.storage.pool.parquet import ParquetPool
    cfg = dist_config(max_unacked=64)
    root = Path(tempfile.mkdtemp(prefix="fleet-bench-")) / "pool"
    server = TrainerServer(field_truck_meta(vehicle="learner"), StorageConfig(url=str(root)), cfg)
    stop = threading.Event()
    thread = threading.Thread(target=server.serve, args=(stop,), daemon=True)
    thread.start()
    ready, go = CTX.Queue(), CTX.Event()
    procs = [CTX.Process(target=tspace_client, args=(cfg.model_dump_json(), f"truck-{i}", n, batch, ready, go)) for i in range(n_clients)]
    for p in procs: p.start()
    for _ in procs: ready.get(timeout=120)
    total = n_clients * n
    t0 = time.perf_counter()
    go.set()
    while server.stats["stored"] < total and thread.is_alive(): time.sleep(0.002)
    dt = time.perf_counter() - t0
    for p in procs: p.join(60)
    stop.set(); thread.join(10); server.close()
    with ParquetPool(str(root)) as pool:
        df = pool.query()
    dup = int(df.duplicated(["vehicle", "step"]).sum())
    lost = total - (len(df) - dup)
    return total / dt, f"lost {lost}, duplicated {dup}"


# --- trainer ingest: agentlace -----------------------------------------------------------------------
def loopback_only():
    "agentlace binds tcp://*: rewrite that to 127.0.0.1 in this process."
    import zmq
    bind = zmq.Socket.bind
    zmq.Socket.bind = lambda self, addr: bind(self, addr.replace("tcp://*:", "tcp://127.0.0.1:"))


def agentlace_config(port, bport):
    from agentlace.trainer import TrainerConfig
    return TrainerConfig(port_number=port, broadcast_port=bport)


def agentlace_client(port, bport, vehicle, n, batch, ready, go):
    import logging
    from agentlace.data.data_store import QueuedDataStore
    from agentlace.trainer import TrainerClient
    _, frames = batches(vehicle, n, batch)
    rows = [[{"vehicle": vehicle, "step": int(r.step), "timestamp": r.Index.value, "state": r.state, "action": r.action,
              "reward": float(r.reward), "next_state": r.next_state, "terminal": bool(r.terminal)} for r in f.itertuples()]
            for f in frames]   # the same records as plain dicts of arrays, as agentlace users send them
    store = QueuedDataStore(n)
    client = TrainerClient(vehicle, "127.0.0.1", agentlace_config(port, bport), data_store=store, log_level=logging.WARNING,
                           timeout_ms=30_000)
    ready.put(vehicle)
    go.wait()
    for batch_rows in rows:
        store.batch_insert(batch_rows)
        assert client.update(), "agentlace update failed"


def agentlace_ingest(n_clients, n, batch) -> tuple[float, str]:
    import logging
    from agentlace.data.data_store import QueuedDataStore
    from agentlace.trainer import TrainerServer
    loopback_only()
    port, bport = free_port(), free_port()
    stored = []
    server = TrainerServer(agentlace_config(port, bport), data_callback=lambda name, payload: stored.append(len(payload["data"])),
                           log_level=logging.WARNING)
    stores = {f"truck-{i}": QueuedDataStore(n) for i in range(n_clients)}
    for name, s in stores.items(): server.register_data_store(name, s)
    server.start(threaded=True)
    ready, go = CTX.Queue(), CTX.Event()
    procs = [CTX.Process(target=agentlace_client, args=(port, bport, f"truck-{i}", n, batch, ready, go)) for i in range(n_clients)]
    for p in procs: p.start()
    for _ in procs: ready.get(timeout=120)
    total = n_clients * n
    t0 = time.perf_counter()
    go.set()
    while sum(stored) < total and any(p.is_alive() for p in procs): time.sleep(0.002)
    dt = time.perf_counter() - t0
    for p in procs: p.join(60)
    server.req_rep_server.is_kill = True   # its stop() closes the socket under the serving thread: let that thread end first
    server.thread.join(5)
    server.stop()
    keys = [(name, d["step"]) for name, s in stores.items() for d in s.get_latest_data(-1)]
    dup = len(keys) - len(set(keys))
    return total / dt, f"lost {total - len(set(keys))}, duplicated {dup}"


# --- weight broadcast -------------------------------------------------------------------------------
def actor_weights(rng, scale=0.1) -> list:
    return [a for i, o in zip(ACTOR_SIZES, ACTOR_SIZES[1:])
            for a in (rng.normal(0, scale, (i, o)).astype(np.float32), np.zeros(o, np.float32))]


def wait_for(cond, timeout=30.0):
    deadline = time.perf_counter() + timeout
    while not cond():
        if time.perf_counter() > deadline: raise TimeoutError("broadcast not received")
        time.sleep(0.0002)


def tspace_broadcast(k: int, repeats: int) -> float:
    "Median seconds from `publish_weights` until all `k` clients hold the new version."
    from tspace.config.storage import StorageConfig
    from tspace.data.core import field_truck_meta
    from tspace.dist.trainer import TrainerClient, TrainerServer
    cfg = dist_config()
    server = TrainerServer(field_truck_meta(vehicle="learner"), StorageConfig(url=tempfile.mkdtemp(prefix="fleet-bench-")), cfg)
    stop = threading.Event()
    thread = threading.Thread(target=server.serve, args=(stop,), daemon=True)
    thread.start()
    clients = [TrainerClient(f"truck-{i}", field_truck_meta(vehicle=f"truck-{i}"), cfg).connect(30) for i in range(k)]
    rng, times = np.random.default_rng(0), []
    server.publish_weights(actor_weights(rng))              # the subscriptions are live once this one arrived
    wait_for(lambda: all(c.weights_version == 1 for c in clients))
    for _ in range(repeats):
        w = actor_weights(rng)
        t0 = time.perf_counter()
        v = server.publish_weights(w)
        wait_for(lambda: all(c.weights_version == v for c in clients))
        times.append(time.perf_counter() - t0)
    for c in clients: c.close()
    stop.set(); thread.join(10); server.close()
    return statistics.median(times)


def agentlace_broadcast(k: int, repeats: int) -> float:
    import logging
    from agentlace.zmq_wrapper.broadcast import BroadcastClient, BroadcastServer
    loopback_only()
    port = free_port()
    server = BroadcastServer(port, log_level=logging.WARNING)
    seen = [0] * k
    clients = []
    for i in range(k):
        c = BroadcastClient("127.0.0.1", port, log_level=logging.WARNING)
        c.async_start(lambda msg, i=i: seen.__setitem__(i, msg["version"]))
        clients.append(c)
    rng, times = np.random.default_rng(0), []
    deadline = time.perf_counter() + 30
    while not all(s == 1 for s in seen) and time.perf_counter() < deadline:   # PUB/SUB: resend until everyone listens
        server.broadcast({"version": 1, "params": actor_weights(rng)}); time.sleep(0.01)
    for v in range(2, repeats + 2):
        msg = {"version": v, "params": actor_weights(rng)}
        t0 = time.perf_counter()
        server.broadcast(msg)
        wait_for(lambda: all(s == v for s in seen))
        times.append(time.perf_counter() - t0)
    for c in clients: c.is_kill = True
    return statistics.median(times)


# --- inference ------------------------------------------------------------------------------------------
_ACTOR = None

def numpy_actor(obs: np.ndarray) -> np.ndarray:
    "A DDPG actor's forward pass (90-256-256-68, ReLU, tanh; `agent.numpy_actor.MLPActor`, as `tspace serve inference` runs it) on a batch, with fixed weights."
    global _ACTOR
    if _ACTOR is None:
        from tspace.agent.numpy_actor import MLPActor
        S = ACTOR_SIZES[0]
        _ACTOR = MLPActor.from_arrays([np.zeros(S), np.ones(S), *actor_weights(np.random.default_rng(7))], S, ACTOR_SIZES[-1])
    return _ACTOR(obs.reshape(len(obs), -1)).reshape(len(obs), 4, 17)


def truck_spec():
    "The field truck's agent spec (state 30 x 3 within the signals' ranges, action 4 x 17 in [-1, 1])."
    from tspace.agent.spec import AgentSpec
    from tspace.data.core import field_truck_meta
    return AgentSpec.from_meta(field_truck_meta())


def inference_client(cfg_json, i, n, ready, go, out):
    from tspace.config.dist import DistConfig
    from tspace.dist.inference import InferenceClient
    client = InferenceClient(f"edge-{i}", truck_spec(), DistConfig.model_validate_json(cfg_json)).connect(60)
    obs = np.random.default_rng(i).uniform(0, 1, (30, 3)).astype(np.float32)
    for _ in range(20): client.act(obs)
    ready.put(i)
    go.wait()
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        client.act(obs, timeout=5)
        lat.append(time.perf_counter() - t0)
    out.put(lat)
    client.close()


def closed_loop(k: int, n: int, client, first_args: tuple) -> tuple[float, float, float]:
    "p50 and p99 latency (s) and throughput (requests/s) of `k` processes running `client(*first_args, i, n, ready, go, out)`, started together."
    ready, go, out = CTX.Queue(), CTX.Event(), CTX.Queue()
    procs = [CTX.Process(target=client, args=(*first_args, i, n, ready, go, out)) for i in range(k)]
    for p in procs: p.start()
    for _ in procs: ready.get(timeout=120)
    t0 = time.perf_counter()
    go.set()
    lat = [x for _ in procs for x in out.get(timeout=300)]
    dt = time.perf_counter() - t0
    for p in procs: p.join(30)
    return float(np.percentile(lat, 50)), float(np.percentile(lat, 99)), len(lat) / dt


def inference_run(k: int, n: int, max_wait_ms: float) -> tuple[float, float, float]:
    "p50 and p99 latency (s) and throughput (requests/s) of `k` client processes of `n` requests each, the server waiting up to `max_wait_ms` to fill a batch."
    from tspace.dist.inference import InferenceServer
    cfg = dist_config(max_batch=32, max_wait_ms=max_wait_ms)
    server = InferenceServer(numpy_actor, truck_spec(), cfg)
    stop = threading.Event()
    thread = threading.Thread(target=server.serve, args=(stop,), daemon=True)
    thread.start()
    try: return closed_loop(k, n, inference_client, (cfg.model_dump_json(),))
    finally: stop.set(); thread.join(10); server.close()


def echo_client(port, i, n, ready, go, out):
    import zmq
    from tspace.dist.wire import encode
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER); sock.linger = 0; sock.connect(f"tcp://127.0.0.1:{port}")
    msg = encode("act", id=1, obs=np.random.default_rng(i).uniform(0, 1, (30, 3)).astype(np.float32))
    def call(): sock.send(msg); sock.poll(5000); sock.recv()
    for _ in range(20): call()
    ready.put(i)
    go.wait()
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        lat.append(time.perf_counter() - t0)
    out.put(lat)
    sock.close(); ctx.term()


def echo_run(k: int, n: int) -> tuple[float, float, float]:
    "The transport's floor, as `inference_run` measures it: the same `act` messages over the same sockets and loop, a server thread answering each with a fixed `action` envelope of the same size (no decoding, checking or actor)."
    import zmq
    from tspace.dist.wire import encode
    reply = encode("action", id=1, action=np.zeros((4, 17), np.float32), version=0)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER); sock.linger = 0
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    stop = threading.Event()
    def serve():
        while not stop.is_set():
            if not sock.poll(50): continue
            while True:
                try: ident = sock.recv_multipart(zmq.NOBLOCK)[0]
                except zmq.Again: break
                sock.send_multipart([ident, reply])
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try: return closed_loop(k, n, echo_client, (port,))
    finally: stop.set(); thread.join(10); sock.close(); ctx.term()


def local_act(n: int) -> tuple[float, float, float]:
    obs = np.random.default_rng(0).uniform(0, 1, (1, 30, 3)).astype(np.float32)
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        numpy_actor(obs)
        lat.append(time.perf_counter() - t0)
    return float(np.percentile(lat, 50)), float(np.percentile(lat, 99)), n / sum(lat)


def _call(fn, args, out):
    out.put(fn(*args))


def isolated(fn, *args):
    "`fn(*args)` in a fresh process: each measurement starts clean (agentlace leaves ZeroMQ contexts open whose garbage collection blocks)."
    out = CTX.Queue()
    p = CTX.Process(target=_call, args=(fn, args, out))
    p.start()
    result = out.get(timeout=900)
    p.join(60)
    return result


def main():
    from tspace.config.dist import DistConfig
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=2000, help="records each client sends")
    ap.add_argument("--batch", type=int, default=50, help="records per message")
    ap.add_argument("--quick", action="store_true", help="fewer repeats and requests")
    ap.add_argument("--parts", default="ingest,broadcast,inference,fleet", help="which parts to run, comma-separated")
    ap.add_argument("--max-wait-ms", type=float, default=DistConfig.model_fields["max_wait_ms"].default,
                    help="inference: the longest the server waits for the other active clients to fill a batch (DistConfig.max_wait_ms, "
                         "the config's default unless given; the server also never waits longer than an actor call takes); 0 answers what is queued at once")
    ap.add_argument("--fleet-episodes", type=int, default=8, help="fleet: episodes each truck delivers")
    ap.add_argument("--fleet-steps", type=int, default=40, help="fleet: state frames per episode")
    a = ap.parse_args()
    try:
        import agentlace.trainer  # noqa: F401
        have_agentlace = True
    except ImportError:
        have_agentlace = False
        print("agentlace is not installed here: tspace figures only (see the docstring)\n")
    parts = set(a.parts.split(","))
    if "ingest" in parts: ingest(a, have_agentlace)
    if "broadcast" in parts: broadcast(a, have_agentlace)
    if "inference" in parts: inference(a)
    if "fleet" in parts: fleet(a)


def ingest(a, have_agentlace):
    print(f"trainer ingest, {a.records} records per client in batches of {a.batch} (records/s stored)")
    print(f"{'clients':>8} {'tspace':>10} {'agentlace':>10} {'ratio':>7}   checks")
    for k in (1, 2, 4, 8):
        ts, ts_check = isolated(tspace_ingest, k, a.records, a.batch)
        if have_agentlace:
            al, al_check = isolated(agentlace_ingest, k, a.records, a.batch)
            print(f"{k:>8} {ts:>10.0f} {al:>10.0f} {ts / al:>6.2f}x   tspace: {ts_check}; agentlace: {al_check}", flush=True)
        else: print(f"{k:>8} {ts:>10.0f} {'-':>10} {'-':>7}   tspace: {ts_check}", flush=True)


def broadcast(a, have_agentlace):
    repeats = 5 if a.quick else 20
    print(f"\nweight broadcast of a 90-256-256-68 actor ({sum(w.nbytes for w in actor_weights(np.random.default_rng(0))) / 1e3:.0f} kB): "
          f"median ms until all k clients hold the new version, {repeats} versions")
    print(f"{'k':>8} {'tspace':>10} {'agentlace':>10}")
    for k in (1, 4, 16):
        ts = isolated(tspace_broadcast, k, repeats) * 1e3
        al = f"{isolated(agentlace_broadcast, k, repeats) * 1e3:>10.2f}" if have_agentlace else f"{'-':>10}"
        print(f"{k:>8} {ts:>10.2f} {al}", flush=True)


def inference(a):
    n = 200 if a.quick else 1000
    print(f"\ninference of the same NumPy actor: {n} requests per client, the server waiting up to {a.max_wait_ms:g} ms (and one actor call) to fill a batch")
    print("(the floor: a bare pyzmq echo answering the same messages with a fixed action, no decoding, checking or actor)")
    print(f"{'':>14} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>9}   {'echo p50':>8} {'echo p99':>8} {'echo req/s':>10}")
    p50, p99, thr = local_act(n)
    print(f"{'local act':>14} {p50 * 1e3:>8.3f} {p99 * 1e3:>8.3f} {thr:>9.0f}")
    for k in (1, 4, 16):
        m = n if k < 16 else n // 4
        p50, p99, thr = isolated(inference_run, k, m, a.max_wait_ms)
        e50, e99, ethr = isolated(echo_run, k, m)
        print(f"{f'{k} client(s)':>14} {p50 * 1e3:>8.3f} {p99 * 1e3:>8.3f} {thr:>9.0f}   {e50 * 1e3:>8.3f} {e99 * 1e3:>8.3f} {ethr:>10.0f}", flush=True)


def fleet_run(trucks: int, episodes: int, steps: int) -> dict:
    from tspace.config.run import RunConfig
    from tspace.dist.fleet import run_fleet
    cfg = RunConfig.model_validate({"agent": {"kind": "ddpg", "hidden_units": [64, 64]},
                                    "dist": {"trainer_port": free_port(), "weights_port": free_port(), "inference_port": free_port()}})
    with tempfile.TemporaryDirectory() as d:
        r = run_fleet(cfg, trucks, episodes, steps=steps, pool_url=str(Path(d) / "pool"))
    return {k: r[k] for k in ("wall_s", "match", "stored", "updates", "duplicates")}


def fleet(a):
    try: import ray  # noqa: F401
    except ImportError:
        print("\nfleet: Ray is not installed (pip install 'tspace[dist]'): skipped"); return
    print(f"\nfleet on a local Ray: {a.fleet_episodes} episodes of {a.fleet_steps} frames per truck (episodes per wall-clock minute at the learner)")
    print(f"{'trucks':>8} {'episodes/min':>13} {'efficiency':>11} {'updates':>8}   checks")
    base = None
    for n in (1, 2, 4):
        r = isolated(fleet_run, n, a.fleet_episodes, a.fleet_steps)
        rate = n * a.fleet_episodes / r["wall_s"] * 60
        base = base or rate
        print(f"{n:>8} {rate:>13.1f} {rate / (n * base):>10.2f}x {r['updates']:>8}   "
              f"pool = trucks' counts: {r['match']}, {r['stored']} records, {r['duplicates']} duplicates", flush=True)


if __name__ == "__main__":
    main()
