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
