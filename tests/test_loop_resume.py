"""A training run stopped by SIGTERM under the supervisor saves its state and exits cleanly; a new process
resumes it and makes exactly the decisions an uninterrupted run makes (states, intervals, snapshots,
rollbacks, hyperparameters, final weights)."""
import json, random, signal, subprocess, sys, textwrap, time

import numpy as np

SCENARIO = textwrap.dedent("""
    import random, time
    import numpy as np
    from tspace.loop.controller import LoopController
    from tspace.loop.optimizer import PopulationTuner
    from tspace.loop.types import EpisodeData, Pipeline, ToyAgent

    class NoisyPipeline(Pipeline):
        "One-step episodes whose observation comes from NumPy's global generator (so the saved global state matters)."
        def __init__(self, delay=0.0): self.n, self.delay = 0, delay
        def next_episode(self, agent):
            time.sleep(self.delay)
            self.n += 1
            o = np.array([np.random.random()])
            return EpisodeData([o], [agent.act(o)], [0.0], [False], [False], [o], id=self.n)
        def state_dict(self): return {"n": self.n}
        def load_state_dict(self, s): self.n = s["n"]

    BASE = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4]

    def make(run_dir, resume=False, delay=0.0):
        if not resume: np.random.seed(5); random.seed(5)
        ref = [None]
        def score(ag):
            return BASE[ref[0].episode % 20] + 0.1 * float(ag.weights.sum()) + float(ag.act([0.5])[0]) + random.random()
        def learn(ag, data):
            ag.weights = ag.weights + ag.hyperparams["lr"] * (1 + float(data[0]["s"].sum()))
            return {"loss": 0.0}
        agent = ToyAgent(1, 1, {"lr": 0.1, "noise": 0.3}, seed=3, learn_fn=learn)
        c = LoopController(agent, NoisyPipeline(delay), run_dir, max_episodes=60, backoff_factor=1.5, max_interval=4,
                           plateau_patience=2, dormant_patience=4, watchdog_interval=3, degrade_rel=0.2,
                           rollback_on_degradation=True, evaluate=score, resume=resume,
                           tuner=PopulationTuner({"lr": (0.01, 1.0, "log"), "noise": (0.0, 0.5)}, quantile=0.5, min_history=3, seed=11))
        ref[0] = c
        return c
""")

CHILD = SCENARIO + textwrap.dedent("""
    import sys
    from tspace.system.supervisor import Supervisor, run_and_exit
    ctrl = make(sys.argv[1], delay=0.02)
    ctrl.on("episode_end", lambda ev: print("episode", ev.episode, flush=True))
    sup = Supervisor("loop-test", stop_timeout=5.0)
    sup.add_worker("loop", ctrl.worker)
    run_and_exit(sup)
""")


def _scenario():
    ns = {}
    exec(SCENARIO, ns)
    return ns["make"]


def test_sigterm_then_resume_gives_the_uninterrupted_decisions(tmp_path):
    make = _scenario()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "B")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.strip() == "episode 12": break
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=10)
    assert rc == 0, proc.stderr.read()
    assert time.monotonic() - t0 < 5.0
    state = json.loads((tmp_path / "B" / "state" / "loop.json").read_text())
    stopped_at = state["episode"]
    assert 12 <= stopped_at < 60 and state["stop_reason"] == "stopped"

    resumed = make(tmp_path / "B", resume=True)
    assert resumed.episode == stopped_at
    rb = resumed.run()

    saved_np, saved_py = np.random.get_state(), random.getstate()
    try:
        straight = make(tmp_path / "A")
        ra = straight.run()
    finally:
        np.random.set_state(saved_np); random.setstate(saved_py)

    assert (rb.reason, rb.episodes, rb.evaluations) == (ra.reason, ra.episodes, ra.evaluations) == ("max_episodes", 60, ra.evaluations)
    assert resumed.history == straight.history
    assert [(s.id, s.episode, s.score, s.hyperparams) for s in resumed.registry.snapshots] == \
           [(s.id, s.episode, s.score, s.hyperparams) for s in straight.registry.snapshots]
    assert resumed.agent.weights.tolist() == straight.agent.weights.tolist()
    assert resumed.agent.get_hyperparams() == straight.agent.get_hyperparams()
    # the scenario exercises what must be restored: rollbacks and tuner changes on both sides of the stop
    eps = [r["episode"] for r in straight.history]
    assert any(r["rolled_back"] for r in straight.history if r["episode"] > stopped_at)
    assert any(r["new_hyperparams"] for r in straight.history if r["episode"] > stopped_at)
    assert len(eps) > 15
