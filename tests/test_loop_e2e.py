"""End to end: the loop trains the real DDPG agent on Pendulum-v1 for a few short windows.

Shows what a user gets from a run: snapshots on disk with a manifest, a loop state, and a best policy that loads
into a new agent and acts exactly like the one the loop restored. Tiny networks keep it to a few seconds
(plus TensorFlow's import).
"""
import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")
gym = pytest.importorskip("gymnasium")


def test_ddpg_pendulum_snapshots_and_best_policy(tmp_path):
    from tspace.agent.ddpg import DDPG
    from tspace.agent.checkpoint import read_checkpoint_meta
    from tspace.loop.checkpoint import CheckpointRegistry
    from tspace.loop.controller import RLOptimizer

    env = gym.make("Pendulum-v1")
    agent = DDPG.from_spaces(env.observation_space, env.action_space,
                             {"hidden_units": (32, 32), "batch_size": 32, "actor_lr": 1e-3, "critic_lr": 2e-3, "seed": 1})
    events, rollbacks = [], []
    probe = np.stack([env.observation_space.sample() for _ in range(8)])

    def check_rollback(ev):   # after a rollback the agent acts exactly like the snapshot it was rolled back to
        if ev.rolled_back:
            restored = ev.controller.registry.load(ev.snapshot)
            rollbacks.append(np.abs(restored.predict(probe) - ev.controller.agent.predict(probe)).max())

    opt = RLOptimizer(agent, env, tmp_path / "run", window=100, seed=0, max_episodes=4, eval_interval=1, backoff_factor=1.0,
                      degrade_rel=0.5, rollback_on_degradation=True)
    for name in ("improvement", "degradation", "hyperparams", "loop_stop"):
        opt.on(name, lambda ev: events.append((ev.name, ev.episode)))
    opt.on("degradation", check_rollback)
    result = opt.optimize()

    assert result.reason == "max_episodes" and result.episodes == 4 and result.evaluations == 5   # cold start + 4 windows
    assert opt.pipeline.steps == 400 and opt.pipeline.episodes == 2        # two 200-step Pendulum episodes inside 4 windows
    scores = [r["score"] for r in opt.history]
    assert all(-2000 < s <= 0 for s in scores), scores                      # Pendulum returns per 200-step episode
    assert events[-1] == ("loop_stop", 4)

    # snapshots on disk: one directory per manifest entry, each a complete DDPG checkpoint
    snaps_dir = tmp_path / "run" / "snapshots"
    manifest = json.loads((snaps_dir / "manifest.json").read_text())
    ids = [s["id"] for s in manifest["snapshots"]]
    assert ids and ids[0] == "snap-00001" and manifest["snapshots"][0]["reason"] == "cold-start"
    assert sorted(p.name for p in snaps_dir.iterdir() if p.is_dir()) == ids
    for s in manifest["snapshots"]:
        assert read_checkpoint_meta(snaps_dir / s["path"])["kind"] == "ddpg"
        assert s["hyperparams"]["batch_size"] == 32 and s["metrics"]["score"] is not None
    improvements = [e for e in events if e[0] == "improvement"]
    assert len(ids) == 1 + len(improvements)

    assert opt.callback_errors == []
    assert all(err < 1e-6 for err in rollbacks), rollbacks
    assert len(rollbacks) == sum(r["rolled_back"] for r in opt.history)

    # the loop state holds the weights the loop ended with: after 400 steps (updates from step 32 on),
    # unless the last evaluation rolled them back to a snapshot
    state = json.loads((tmp_path / "run" / "state" / "loop.json").read_text())
    meta = read_checkpoint_meta(tmp_path / "run" / "state" / state["agent_dir"])
    last = opt.history[-1]
    want = read_checkpoint_meta(snaps_dir / last["rolled_back_to"]) if last["rolled_back"] else {"observed": 400, "updates": 400 - 32 + 1}
    assert (meta["observed"], meta["updates"]) == (want["observed"], want["updates"])

    # the best policy, loaded from disk into a new agent, acts exactly like the agent the loop restored
    reg = CheckpointRegistry(snaps_dir)
    assert reg.best.id == opt.best.id
    assert reg.best.score == max(scores)
    best = reg.load_best()
    assert isinstance(best, DDPG)
    np.testing.assert_allclose(best.predict(probe), agent.predict(probe), rtol=1e-6, atol=1e-6)
    a = best.act(probe[0], explore=False)
    assert a.shape == (1,) and -2.0 <= a[0] <= 2.0
    opt.pipeline.close()
