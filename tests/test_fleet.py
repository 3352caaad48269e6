"""`tspace fleet` on a local Ray: two simulated truck actors and a learner; one truck actor is killed mid-run and
restarted by Ray; every truck's own count of delivered records is what the pool holds of it (none lost, none twice)."""
import re, subprocess, sys
from pathlib import Path


HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from cli_helpers import TSPACE, clean_env
from servers import free_port



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
