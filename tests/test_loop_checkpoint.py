"""The snapshot registry across processes: the best policy loads in a new process, a reader never sees half a
manifest while snapshots are being written, and a save killed midway leaves the previous state intact."""
import json, signal, subprocess, sys, textwrap

import numpy as np
import pytest

from tspace.loop.checkpoint import CheckpointRegistry
from tspace.loop.types import EvalMetrics, ToyAgent

LOAD_BEST = textwrap.dedent("""
    import json, sys
    from tspace.loop.checkpoint import CheckpointRegistry
    from tspace.loop.types import ToyAgent
    reg = CheckpointRegistry(sys.argv[1])
    agent = ToyAgent(2, 1)
    reg.load_best(agent)
    print(json.dumps({"id": reg.best.id, "weights": agent.weights.tolist(), "hp": agent.get_hyperparams(),
                      "score": reg.best.score, "episode": reg.best.episode}))
""")


def _run(code, *args, **kw):
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=60, **kw)


def test_load_best_in_a_new_process(tmp_path):
    reg = CheckpointRegistry(tmp_path / "snaps", max_snapshots=2)
    agent = ToyAgent(2, 1, {"lr": 0.5})
    for episode, score in enumerate([-10.0, -4.0, -7.0, -2.5, -3.0]):
        agent.weights = np.full((1, 3), float(episode))          # recognisable weights per snapshot
        agent.set_hyperparams(lr=0.1 * (episode + 1))
        reg.save(agent, EvalMetrics(score, episode=episode), episode=episode)
    out = _run(LOAD_BEST, reg.root)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    # best of -10, -4, -7, -2.5, -3 is -2.5 at episode 3 (weights 3, lr 0.4); kept are -2.5 and -3
    assert got["id"] == "snap-00004" and got["episode"] == 3 and got["score"] == -2.5
    assert got["weights"] == [[3.0, 3.0, 3.0]]
    assert got["hp"]["lr"] == pytest.approx(0.4)
    assert sorted(p.name for p in reg.root.iterdir()) == ["manifest.json", "snap-00004", "snap-00005"]


READER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    p = Path(sys.argv[1]) / "manifest.json"
    reads, bad = 0, 0
    t_end = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < t_end:
        try: text = p.read_text()
        except FileNotFoundError: continue
        try:
            doc = json.loads(text)
            assert doc["format"] == 1 and all("id" in s for s in doc["snapshots"])
            reads += 1
        except Exception: bad += 1
    print(reads, bad)
""")


def test_concurrent_reader_never_sees_a_partial_manifest(tmp_path):
    reg = CheckpointRegistry(tmp_path / "snaps", max_snapshots=3)
    agent = ToyAgent(8, 4)
    reg.save(agent, EvalMetrics(0.0))
    reader = subprocess.Popen([sys.executable, "-c", READER, str(reg.root), "1.5"], stdout=subprocess.PIPE, text=True)
    hp = {f"p{i}": "x" * 200 for i in range(50)}                 # large manifests: many bytes per write
    i = 0
    while reader.poll() is None:
        i += 1
        reg.save(agent, EvalMetrics(float(i)), hyperparams=hp, episode=i)
    reads, bad = map(int, reader.stdout.read().split())
    assert bad == 0 and reads > 10 and i > 10, (reads, bad, i)
    assert [s.score for s in reg.snapshots] == [float(i - 2), float(i - 1), float(i)]


KILLED_SAVE = textwrap.dedent("""
    import os, signal, sys
    from tspace.loop import checkpoint
    from tspace.loop.checkpoint import CheckpointRegistry
    from tspace.loop.types import EvalMetrics, ToyAgent
    reg = CheckpointRegistry(sys.argv[1])
    stage = sys.argv[2]
    agent = ToyAgent(); agent.weights[:] = 9.0
    die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
    if stage == "agent-saved":       # the snapshot directory is complete, the manifest does not name it yet
        checkpoint.write_json_atomic = die
    if stage == "manifest-temp":     # the new manifest is written to its temporary file, not yet renamed
        real_replace = os.replace
        os.replace = lambda a, b: die() if str(b).endswith("manifest.json") else real_replace(a, b)
    reg.save(agent, EvalMetrics(9.0), episode=9)
""")


@pytest.mark.parametrize("stage", ["agent-saved", "manifest-temp"])
def test_killed_save_keeps_the_previous_manifest(tmp_path, stage):
    reg = CheckpointRegistry(tmp_path / "snaps")
    agent = ToyAgent()
    agent.weights[:] = 1.0
    reg.save(agent, EvalMetrics(1.0), episode=1)
    out = _run(KILLED_SAVE, reg.root, stage)
    assert out.returncode == -signal.SIGKILL, out.stderr
    assert [s.id for s in reg.snapshots] == ["snap-00001"]       # the manifest is the previous one, complete
    fresh = ToyAgent()
    reg.load_best(fresh)
    assert fresh.weights.tolist() == [[1.0, 1.0]]
    leftovers = sorted(p.name for p in reg.root.iterdir())
    assert "snap-00002" in leftovers                               # the killed save left its directory behind...
    agent.weights[:] = 3.0
    reg.save(agent, EvalMetrics(3.0), episode=3)                   # ...and the next save removes it
    assert sorted(p.name for p in reg.root.iterdir()) == ["manifest.json", "snap-00001", "snap-00002"]
    assert reg.best.episode == 3 and reg.best.id == "snap-00002"
