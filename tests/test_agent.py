"""Agent checkpoints survive a kill (SIGKILL: no clean-up code runs) at every stage of a save.

`DPGAgent.save` writes through `tspace.agent.checkpoint.checkpoint_writer`; these tests kill a process inside that
writer, without TensorFlow, so they stay fast. The agents' own save/load tests live in the 06_agent notebooks.
"""
import signal, subprocess, sys, textwrap

import pytest

from tspace.agent.checkpoint import checkpoint_dir, checkpoint_writer

CHILD = textwrap.dedent("""
    import os, signal, sys, time
    from pathlib import Path
    from tspace.agent import checkpoint
    root, stage = Path(sys.argv[1]), sys.argv[2]
    die = lambda: os.kill(os.getpid(), signal.SIGKILL)
    if stage == "renamed":      # the new checkpoint directory is in place, CURRENT still names the old one
        real_rename = os.rename
        def rename(a, b):
            real_rename(a, b)
            die()
        os.rename = rename
    if stage == "pointer":      # the new CURRENT is written to a temporary file, not yet renamed over the old one
        os.replace = lambda a, b: die()
    with checkpoint.checkpoint_writer(root) as d:
        (d / "x.txt").write_text("two")
        if stage == "writing":  # killed from outside while files are being written
            (d / "weights.bin").write_bytes(b"0" * 100_000)
            print("ready", flush=True)
            time.sleep(60)
""")


def save(root, text):
    with checkpoint_writer(root) as d:
        (d / "x.txt").write_text(text)


@pytest.mark.parametrize("stage", ["writing", "renamed", "pointer"])
def test_kill_during_save_keeps_the_previous_checkpoint(tmp_path, stage):
    root = tmp_path / "ckpt"
    save(root, "one")
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(root), stage], stdout=subprocess.PIPE, text=True)
    if stage == "writing":
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    leftovers = sorted(p.name for p in root.iterdir())
    assert len(leftovers) > 2, leftovers                       # the killed save left something behind...
    assert (checkpoint_dir(root) / "x.txt").read_text() == "one"   # ...but the checkpoint is the previous one
    save(root, "three")                                        # the next save works and removes the leftovers
    assert (checkpoint_dir(root) / "x.txt").read_text() == "three"
    names = sorted(p.name for p in root.iterdir())
    assert names == ["CURRENT", checkpoint_dir(root).name], names


def test_no_checkpoint_yet(tmp_path):
    from tspace.system.errors import AgentError
    with pytest.raises(AgentError, match="CURRENT file missing"):
        checkpoint_dir(tmp_path)


def test_tspace_run_trains_a_sac_agent(tmp_path):
    "`tspace run --agent sac` trains one short episode on the simulated truck and leaves a SAC checkpoint that loads."
    import json
    from cli_helpers import TSPACE, clean_env
    cfg = tmp_path / "tiny.toml"
    cfg.write_text('episodes = 1\nseed = 3\n[agent]\nhidden_units = [16, 16]\nbatch_size = 8\n')
    r = subprocess.run([TSPACE, "run", "--config", str(cfg), "--data", str(tmp_path / "data"), "--cycle", "triangle",
                        "--agent", "sac", "--episodes", "1", "--speedup", "50", "--quiet", "--no_plots"],
                       capture_output=True, text=True, env=clean_env(), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    (rd,) = list((tmp_path / "data" / "_runs").iterdir())
    assert "-sac-" in rd.name
    summary = json.loads((rd / "summary.json").read_text())
    assert summary["loop"]["episodes"] == 1 and summary["records_stored"] > 0
    from tspace.agent.dpg import load_agent
    agent = load_agent(rd / "checkpoint")
    assert type(agent).__name__ == "SAC" and agent.observed > 0


def test_tspace_run_and_train_a_transformer_agent(tmp_path):
    "`tspace run --agent transformer` trains one short episode; `tspace train` continues offline from the pool and its checkpoint; both checkpoints load."
    import json
    from cli_helpers import TSPACE, clean_env
    cfg = tmp_path / "tiny.toml"
    cfg.write_text('episodes = 1\nseed = 3\n[agent]\nhidden_units = [16, 16]\nbatch_size = 2\n'
                   'context_len = 4\nmodel_dim = 16\nattention_heads = 2\nattention_layers = 1\n')
    data = tmp_path / "data"
    r = subprocess.run([TSPACE, "run", "--config", str(cfg), "--data", str(data), "--cycle", "triangle",
                        "--agent", "transformer", "--episodes", "1", "--speedup", "50", "--quiet", "--no_plots"],
                       capture_output=True, text=True, env=clean_env(), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    (rd,) = list((data / "_runs").iterdir())
    assert "-transformer-" in rd.name
    summary = json.loads((rd / "summary.json").read_text())
    assert summary["loop"]["episodes"] == 1 and summary["records_stored"] > 0
    from tspace.agent.dpg import load_agent
    online = load_agent(rd / "checkpoint")
    assert type(online).__name__ == "TransformerDPG" and online.config.context_len == 4   # (the loop may keep its best snapshot)
    out = tmp_path / "offline"
    r = subprocess.run([TSPACE, "train", "--config", str(cfg), "--data", str(data), "--agent", "transformer",
                        "--checkpoint", str(rd / "checkpoint"), "--updates", "3", "--out", str(out)],
                       capture_output=True, text=True, env=clean_env(), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "3 update(s)" in r.stdout, r.stdout
    offline = load_agent(out)
    assert type(offline).__name__ == "TransformerDPG" and offline.updates == online.updates + 3
    assert offline.observed >= online.observed + summary["records_stored"]    # the pool's episode was observed
