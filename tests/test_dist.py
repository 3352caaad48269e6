"""The fleet layer across processes on loopback: trainer server and clients killed and restarted mid-stream without a
record lost or stored twice; late joiners, spec mismatches, hostile payloads and CURVE keys.

Run as a script, this file is the server or a client process of those tests (`python tests/test_dist.py server|client ...`)."""
import os, pickle, signal, subprocess, sys, threading
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def dist_config(**kw):
    from tspace.config.dist import DistConfig
    from servers import free_port
    return DistConfig(trainer_port=free_port(), weights_port=free_port(), inference_port=free_port(), **kw)


def truck_records(meta, first_step: int, n: int):
    "`n` records of `meta`'s truck, steps `first_step`.. one second apart."
    import pandas as pd
    from tspace.data.core import records_from_arrays
    steps = np.arange(first_step, first_step + n)
    start = pd.Timestamp("2026-06-01T08:00:00Z")
    s = np.full((n, *meta.state.shape), 0.5, np.float32)
    return records_from_arrays(meta, timestamp=start + pd.to_timedelta(steps + 1, "s"), episode_start=start, step=steps,
                               state=s, action=np.zeros((n, *meta.action.shape)), reward=-steps.astype(np.float32),
                               next_state=s, terminal=np.zeros(n, bool))


# --- the processes ------------------------------------------------------------------------------
def server_main(pool: str, cfg_json: str) -> None:
    "A trainer server under a supervisor; prints 'ready' once bound; SIGTERM stops it cleanly."
    from tspace.config.dist import DistConfig
    from tspace.config.storage import StorageConfig
    from tspace.data.core import field_truck_meta
    from tspace.dist.trainer import TrainerServer
    from tspace.system.supervisor import Supervisor, run_and_exit
    import logging; logging.basicConfig(filename=pool + ".server.log", level=logging.DEBUG)
    server = TrainerServer(field_truck_meta(vehicle="learner"), StorageConfig(url=pool), DistConfig.model_validate_json(cfg_json))
    sup = Supervisor("test trainer server")
    server.add_to(sup)
    print("ready", flush=True)
    run_and_exit(sup)


def client_main(client_id: str, batch: int, cfg_json: str, acked_file: str, finish_file: str) -> None:
    "Send batches until `finish_file` exists, appending the highest acknowledged seq to `acked_file` as it grows."
    from tspace.config.dist import DistConfig
    from tspace.data.core import field_truck_meta
    from tspace.dist.trainer import TrainerClient
    import logging; logging.basicConfig(filename=acked_file + ".log", level=logging.DEBUG)
    meta = field_truck_meta(vehicle=client_id, driver="d")
    client = TrainerClient(client_id, meta, DistConfig.model_validate_json(cfg_json)).connect(30)
    first, written = client.next_seq, 0
    with open(acked_file, "a") as out:
        def report():
            nonlocal written
            if client.acked > written:
                written = client.acked
                out.write(f"{written}\n"); out.flush(); os.fsync(out.fileno())
        k = first
        while not os.path.exists(finish_file):
            client.send(truck_records(meta, (k - 1) * batch, batch), timeout=60)
            k += 1
            report()
        while not client.wait_acked(0.05): report()
        report()
    client.close()


# --- helpers of the tests -------------------------------------------------------------------------
def acked(path: Path) -> int:
    lines = path.read_text().split() if path.exists() else []
    return int(lines[-1]) if lines else 0


def start_server(pool, cfg):
    p = subprocess.Popen([sys.executable, __file__, "server", str(pool), cfg.model_dump_json()], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


@pytest.fixture
def procs():
    started = []
    yield started
    for p in started:
        if p.poll() is None: p.kill()
        p.wait(10)


def test_kills_and_restarts_lose_nothing_and_store_nothing_twice(tmp_path, procs):
    from servers import wait_until
    from tspace.storage.pool.parquet import ParquetPool
    cfg = dist_config(max_unacked=8, resend_after_s=0.5)
    pool, finish, B = tmp_path / "pool", tmp_path / "finish", 20
    procs.append(server := start_server(pool, cfg))
    files = {c: tmp_path / f"{c}.acked" for c in ("truck-1", "truck-2", "truck-3")}
    clients = {c: subprocess.Popen([sys.executable, __file__, "client", c, str(B), cfg.model_dump_json(), str(f), str(finish)])
               for c, f in files.items()}
    procs.extend(clients.values())
    wait_until(lambda: all(acked(f) >= 5 for f in files.values()), 60, "5 acknowledged batches from each client")
    clients["truck-3"].send_signal(signal.SIGKILL)               # a client killed mid-stream
    clients["truck-3"].wait(10)
    mark = acked(files["truck-1"])
    wait_until(lambda: acked(files["truck-1"]) >= mark + 5, 60, "more batches after the kill")
    server.send_signal(signal.SIGKILL)                           # the server killed mid-stream...
    server.wait(10)
    mark = {c: acked(files[c]) for c in ("truck-1", "truck-2")}
    procs.append(server := start_server(pool, cfg))              # ...and restarted on the same pool
    wait_until(lambda: all(acked(files[c]) >= mark[c] + 5 for c in mark), 60, "batches acknowledged by the restarted server")
    finish.touch()
    for c in ("truck-1", "truck-2"): assert clients[c].wait(60) == 0, c
    server.send_signal(signal.SIGTERM)
    assert server.wait(30) == 0
    with ParquetPool(str(pool)) as p:
        for c, f in files.items():
            steps = p.query(vehicle=c).step.to_numpy()
            assert len(steps) == len(set(steps)), f"{c}: {len(steps) - len(set(steps))} record(s) stored twice"
            n_acked = acked(f) * B
            assert set(range(n_acked)) <= set(steps), f"{c}: acknowledged records missing"
            if c != "truck-3": assert len(steps) == n_acked, (c, len(steps), n_acked)   # finished clients: all acknowledged
        assert len(p.damaged) == 0


# --- in-process servers -----------------------------------------------------------------------------
@pytest.fixture
def trainer(tmp_path):
    "A trainer server serving in a thread; yields (server, cfg); the keyword `curve` turns CURVE on."
    made = {}
    def make(cfg=None, **kw):
        from tspace.config.storage import StorageConfig
        from tspace.data.core import field_truck_meta
        from tspace.dist.trainer import TrainerServer
        cfg = cfg or dist_config()
        server = TrainerServer(field_truck_meta(vehicle="learner"), StorageConfig(url=str(tmp_path / "pool")), cfg, **kw)
        stop = threading.Event()
        thread = threading.Thread(target=server.serve, args=(stop,), daemon=True)
        thread.start()
        made.update(server=server, stop=stop, thread=thread)
        return server, cfg
    yield make
    if made:
        made["stop"].set(); made["thread"].join(5)
        assert not made["thread"].is_alive()
        made["server"].close()


def np_policy(weights, obs):
    "A linear policy from broadcast weights: tanh(obs.flat @ W + b)."
    W, b = weights
    return np.tanh(obs.reshape(-1) @ W + b)


def test_a_late_joiner_acts_with_the_current_weights(trainer):
    from tspace.data.core import field_truck_meta
    from tspace.dist.trainer import TrainerClient
    server, cfg = trainer()
    rng = np.random.default_rng(0)
    meta = field_truck_meta(vehicle="early")
    early = TrainerClient("early", meta, cfg).connect()
    versions = [[rng.normal(size=(90, 68)).astype(np.float32), rng.normal(size=68).astype(np.float32)] for _ in range(3)]
    for w in versions: server.publish_weights(w)
    late = TrainerClient("late", field_truck_meta(vehicle="late"), cfg).connect()
    assert late.weights_version == 3
    obs = np.full(meta.state.shape, 0.3, np.float32)
    np.testing.assert_allclose(np_policy(late.weights, obs), np_policy(versions[-1], obs), rtol=1e-6)
    from servers import wait_until
    wait_until(lambda: early.weights_version == 3, 10, "the early client at version 3")
    np.testing.assert_array_equal(early.weights[0], versions[-1][0])
    early.close(); late.close()


def test_a_spec_mismatch_is_refused_with_both_sides(trainer):
    from tspace.data.core import cloud_truck_meta
    from tspace.dist.trainer import TrainerClient
    from tspace.system.errors import TspaceConnectionError
    server, cfg = trainer()
    client = TrainerClient("cloud-7", cloud_truck_meta(vehicle="cloud-7"), cfg)
    with pytest.raises(TspaceConnectionError) as e: client.connect()
    assert "client 'cloud-7' sends state (200, 3)" in str(e.value) and "the server expects state (30, 3)" in str(e.value)
    assert server.stats["refused hello"] == 1
    client.close()


def test_malformed_oversized_and_pickle_payloads_are_refused_and_counted(trainer, tmp_path):
    import zmq
    from tspace.data.core import field_truck_meta
    from tspace.dist.trainer import TrainerClient
    from tspace.dist.wire import Decoder
    server, cfg = trainer(dist_config(max_message_mb=0.05))
    marker = tmp_path / "unpickled"
    class Exploit:
        def __reduce__(self): return (os.system, (f"touch {marker}",))
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(cfg.address(cfg.trainer_port))
    answers = []
    for payload in (b"\xc1\xc1 not msgpack", b"\x00" * 60_000, pickle.dumps(Exploit())):
        sock.send(payload)
        assert sock.poll(10_000), "no answer"
        answers.append(Decoder("test").decode(sock.recv())["reason"])
    assert "malformed" in answers[0] and "oversized" in answers[1] and "pickle" in answers[2], answers
    assert {k: server.decoder.stats[k] for k in ("malformed", "oversized", "pickle")} == {"malformed": 1, "oversized": 1, "pickle": 1}
    assert not marker.exists()
    meta = field_truck_meta(vehicle="honest")                  # and the server goes on serving
    client = TrainerClient("honest", meta, cfg).connect()
    client.send(truck_records(meta, 0, 5))
    assert client.wait_acked(20) and server.stats["stored"] == 5
    client.close(); sock.close()


def test_curve_admits_the_right_key_and_refuses_a_wrong_one(trainer, tmp_path):
    import zmq.auth
    from tspace.data.core import field_truck_meta
    from tspace.dist.trainer import TrainerClient
    from tspace.system.errors import TspaceConnectionError
    keys = tmp_path / "keys"
    (keys / "admitted").mkdir(parents=True)
    for name in ("server", "truck", "stranger"): zmq.auth.create_certificates(str(keys), name)
    (keys / "admitted" / "truck.key").write_bytes((keys / "truck.key").read_bytes())
    server, cfg = trainer(dist_config(curve=True, server_secret_key=keys / "server.key_secret", authorized_clients=keys / "admitted"))
    def client_cfg(who): return cfg.model_copy(update=dict(client_secret_key=keys / f"{who}.key_secret", server_public_key=keys / "server.key"))
    stranger = TrainerClient("stranger", field_truck_meta(vehicle="stranger"), client_cfg("stranger"))
    with pytest.raises(TspaceConnectionError, match="no welcome"): stranger.connect(timeout=1.5)
    stranger.close()
    meta = field_truck_meta(vehicle="truck")
    truck = TrainerClient("truck", meta, client_cfg("truck")).connect()
    truck.send(truck_records(meta, 0, 4))
    assert truck.wait_acked(20) and server.stats["stored"] == 4
    server.publish_weights([np.ones(3, np.float32)])
    from servers import wait_until
    wait_until(lambda: truck.weights_version == 1, 10, "weights through the encrypted broadcast")
    truck.close()
    assert "stranger" not in server.clients


if __name__ == "__main__":
    role, *args = sys.argv[1:]
    if role == "server": server_main(*args)
    elif role == "client": client_main(args[0], int(args[1]), *args[2:])
    else: sys.exit(f"unknown role {role!r}")
