"""`tspace fleet` on a local Ray: two simulated truck actors and a learner; one truck actor is killed mid-run and
restarted by Ray; every truck's own count of delivered records is what the pool holds of it (none lost, none twice).
On a Ray cluster started apart (`--address`), and on a port another server holds (one line, no traceback)."""
import re, secrets, shutil, subprocess, sys, tempfile
from contextlib import contextmanager
from pathlib import Path


HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from cli_helpers import TSPACE, clean_env
from servers import free_port

RAY = str(Path(TSPACE).with_name("ray"))



def test_fleet_of_two_with_a_killed_truck_loses_nothing_and_stores_nothing_twice(tmp_path):
    from tspace.storage.pool.parquet import ParquetPool
    cfg = tmp_path / "fleet.toml"
    cfg.write_text(f"""[agent]\nkind = "ddpg"\nhidden_units = [8]\nbatch_size = 8\n
[dist]\ntrainer_port = {free_port()}\nweights_port = {free_port()}\ninference_port = {free_port()}\n""")
    pool = tmp_path / "pool"
    p = subprocess.run([TSPACE, "fleet", "--trucks", "2", "--episodes", "8", "--steps", "4", "--config", str(cfg), "--pool", str(pool),
                        "--publish-every", "2", "--kill-truck-after", "1"], capture_output=True, text=True, timeout=120, env=clean_env())
    assert p.returncode == 0, (p.stdout, p.stderr[-3000:])
    trucks = {m[0]: (int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5])) for m in re.findall(
        r"^(truck-\d): delivered (\d+) episode\(s\), (\d+) record\(s\); (\d+) restart\(s\), (\d+) unacknowledged .*; weights v(\d+); the pool",
        p.stdout, re.M)}
    assert sorted(trucks) == ["truck-0", "truck-1"], p.stdout
    with ParquetPool(str(pool)) as pl:
        for truck, (episodes, records, restarts, dropped, version) in trucks.items():
            stored = pl.query(vehicle=truck)
            assert episodes == 8 and len(stored) == records, (truck, episodes, records, len(stored))   # none lost, none twice
            assert not stored.index.duplicated().any(), truck
            assert stored.episode_start.nunique() == 8, truck
        assert len(pl.damaged) == 0
    assert trucks["truck-0"][2] == 1 and trucks["truck-1"][2] == 0, trucks       # the killed truck was restarted once
    assert "drill: truck-0@" in p.stdout and "pool matches the trucks' counts: yes" in p.stdout, p.stdout
    assert "tspace fleet: Ray at 127.0.0.1:" in p.stdout, p.stdout            # a local Ray listens on loopback only


def test_fleet_on_a_taken_port_says_so_in_one_line(tmp_path):
    import socket
    with socket.socket() as taken:                 # another server holds the trainer port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = tmp_path / "fleet.toml"
        cfg.write_text(f"""[agent]\nkind = "ddpg"\nhidden_units = [8]\n[dist]\ntrainer_port = {port}\nweights_port = {free_port()}\n""")
        p = subprocess.run([TSPACE, "fleet", "--trucks", "1", "--episodes", "1", "--config", str(cfg), "--pool", str(tmp_path / "pool")],
                           capture_output=True, text=True, timeout=120, env=clean_env())
    assert p.returncode == 2, (p.stdout, p.stderr[-3000:])
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    assert f"tspace fleet: cannot listen on tcp://127.0.0.1:{port}: Address already in use" in p.stderr, p.stderr[-3000:]


@contextmanager
def ray_head(env: dict):
    "A Ray head node on this host (`ray start --head`) with free ports; yields its address; stops only its own processes."
    import psutil
    folder = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))     # short: Ray's socket paths live under it
    port = free_port()
    cmd = [RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "2", "--include-dashboard", "false",
           "--dashboard-port", str(free_port()), "--ray-client-server-port", str(free_port()), "--temp-dir", str(folder),
           "--disable-usage-stats"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
        yield f"127.0.0.1:{port}"
    finally:        # not `ray stop`: it stops every Ray of this host, other tests' too
        ours = [p for p in psutil.process_iter(["cmdline"]) if str(folder) in " ".join(p.info["cmdline"] or [])]
        ours += [c for p in ours for c in p.children(recursive=True)]
        for p in ours: p.terminate()
        _, alive = psutil.wait_procs(ours, timeout=15)
        for p in alive: p.kill()
        shutil.rmtree(folder, ignore_errors=True)


def test_fleet_joins_a_running_ray_cluster(tmp_path):
    "`tspace fleet --address` on a head node started apart (with Ray's token authentication, as `ray start` enables it)."
    env = clean_env({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
                     "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"})     # a one-host cluster: Ray on 127.0.0.1 only (else every interface)
    cfg = tmp_path / "fleet.toml"
    cfg.write_text(f"""[agent]\nkind = "ddpg"\nhidden_units = [8]\nbatch_size = 8\n
[dist]\ntrainer_port = {free_port()}\nweights_port = {free_port()}\ninference_port = {free_port()}\n""")
    with ray_head(env) as address:
        p = subprocess.run([TSPACE, "fleet", "--trucks", "2", "--episodes", "2", "--steps", "3", "--address", address, "--config", str(cfg),
                            "--pool", str(tmp_path / "pool")], capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, (p.stdout, p.stderr[-3000:])
    assert f"tspace fleet: 2 truck(s) on {address}" in p.stdout and "tspace fleet: Ray at 127.0.0.1:" in p.stdout, p.stdout
    delivered = re.findall(r"^(truck-\d): delivered 2 episode\(s\), (\d+) record\(s\); 0 restart\(s\).*the pool holds (\d+)$", p.stdout, re.M)
    assert [t for t, _, _ in delivered] == ["truck-0", "truck-1"] and all(n == held for _, n, held in delivered), p.stdout
    assert "pool matches the trucks' counts: yes" in p.stdout, p.stdout


def test_a_fleet_truck_and_its_actor_load_no_tensorflow():
    "The truck actors run the learner's actor in NumPy (`agent.numpy_actor`): a Ray worker never loads TensorFlow for them."
    from test_import import HEAVY, imported_by
    mods = imported_by("import tspace.dist.fleet, tspace.agent.numpy_actor, tspace.sim.env")
    assert "numpy" in mods and not mods & set(HEAVY), mods & set(HEAVY)
