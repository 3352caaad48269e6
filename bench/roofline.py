"""How many gradient steps per second one CPU thread allows: each tspace agent's update on the truck's shapes, counted in
FLOPs, against the matrix products' measured one-thread peak on this machine.

Issue 21 asks for at least 2x Stable-Baselines3's gradient steps per second for every algorithm (one thread each). An
update is mostly dense matrix products, so its time has a floor that no framework can go under: its FLOPs divided by the
fastest rate this CPU multiplies matrices of those shapes on one thread. This bench prints that floor, as an upper bound on
gradient steps per second, next to tspace's and SB3's rates measured in the same run (SB3 in its own process, one torch
thread, as bench/agents.py times it) and 2x SB3's.

Counting (batch 256, the agents' own Keras networks for the truck with hidden layers 400x300): f(net) is the
multiply-adds of one forward pass per sample, the sum of its Dense kernels' sizes. Only what an update cannot skip is
counted: each forward pass, and the weight gradients of each trained network (one forward pass again); the input
gradients that carry the actor's loss back through the critic, and every element-wise op, the optimizers and the soft
updates are left out. The counts are lower bounds, so the rates are upper bounds:
- DDPG: target f(actor') + f(critic'); critic step 2 f(critic); actor step 2 f(actor) + f(critic):  3 f(actor) + 4 f(critic)
- TD3: target f(actor') + 2 f(critic'); two critics 4 f(critic); actor step every 2nd update:      2 f(actor) + 6.5 f(critic)
- SAC: target f(actor) + 2 f(critic'); two critics 4 f(critic); actor step 2 f(actor) + 2 f(critic): 3 f(actor) + 8 f(critic)
The peak: each kernel shape's product with a batch of 256, 20 of them in one compiled graph (no per-call overhead), one
TensorFlow thread, float32 (the agents' precision); the best rate over the shapes, measured before and after the agents
and the higher taken (an upper bound again). It is the rate TensorFlow's oneDNN kernels reach on these shapes, not the
CPU's nominal peak; torch runs SB3's products through the same kind of kernels.

    python bench/roofline.py            # about 3 minutes on 2 cores
"""
from __future__ import annotations
import argparse, sys, time
import numpy as np
from common import one_thread_tf

BATCH, UPDATES = 256, 300
PASSES = {"ddpg": (3, 4), "td3": (2, 6.5), "sac": (3, 8)}
"(forward passes of the actor, of one critic) per update that cannot be skipped, as counted in the docstring."


def dense_kernels(model) -> list[tuple[int, int]]:
    import keras
    return [tuple(l.kernel.shape) for l in model.layers if isinstance(l, keras.layers.Dense)]


def matmul_peak(shapes, batch: int = BATCH) -> dict:
    "GFLOP/s of `batch` x kernel products on one thread, 20 per compiled graph, for each distinct kernel shape."
    import tensorflow as tf
    rng, out = np.random.default_rng(0), {}
    for k, n in sorted(set(shapes)):
        x = tf.constant(rng.random((batch, k), np.float32)); w = tf.constant(rng.random((k, n), np.float32))
        graph = tf.function(lambda x, w: tf.add_n([tf.matmul(x + float(i), w) for i in range(20)]))
        for _ in range(5): graph(x, w)
        reps = max(20, int(2e9 / (40 * batch * k * n)))
        t0 = time.perf_counter()
        for _ in range(reps): graph(x, w)
        out[(k, n)] = 2 * batch * k * n * 20 * reps / (time.perf_counter() - t0) / 1e9
    return out


def measured_rate(agent, updates: int = UPDATES) -> float:
    "tspace's gradient steps per second: `learn()` (sample and update) on a replay of random transitions."
    spec, rng, n = agent.spec, np.random.default_rng(0), 5000
    s = rng.uniform(-1, 1, (n + 1, spec.state_size)).astype(np.float32)
    a = rng.uniform(-1, 1, (n, spec.action_size)).astype(np.float32)
    agent.observe({"s": s[:-1].reshape(n, *spec.state_shape), "a": a.reshape(n, *spec.action_shape),
                   "r": rng.normal(size=n).astype(np.float32), "s2": s[1:].reshape(n, *spec.state_shape), "terminal": np.zeros(n, bool)})
    for _ in range(30): agent.learn()
    t0 = time.perf_counter()
    for _ in range(updates): agent.learn()
    return updates / (time.perf_counter() - t0)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--algos", default="ddpg,td3,sac")
    p.add_argument("--updates", type=int, default=UPDATES, help="updates timed per library and algorithm")
    a = p.parse_args(argv)
    one_thread_tf()
    from agents import NAMES, TRUCK, sb3_run, tspace_agent, truck_env
    from common import sb3_available
    env = truck_env(encoding=TRUCK["encoding"])
    agents = {algo: tspace_agent(algo, {**TRUCK, "buffer_size": 5000}, 0, env.observation_space, env.action_space)
              for algo in a.algos.split(",")}
    shapes = [s for ag in agents.values() for net in (ag.actor, ag.critic) for s in dense_kernels(net)]
    peaks = matmul_peak(shapes)
    print("one-thread float32 matmul, batch 256, GFLOP/s: " + ", ".join(f"{k}x{n} {g:.0f}" for (k, n), g in peaks.items()), flush=True)
    rows = []
    for algo, agent in agents.items():
        hp = {**TRUCK, "noise_sigma": None if algo == "sac" else TRUCK["noise_sigma"]}
        sb3 = sb3_run({"what": "speed", "algo": algo, "hp": hp, "updates": a.updates})["grad_steps_s"] if sb3_available() else None
        rows.append((algo, agent, measured_rate(agent, a.updates), sb3))
    again = matmul_peak(shapes)
    peak = max(max(peaks.values()), max(again.values()))
    print(f"best {max(peaks.values()):.0f} before the agents, {max(again.values()):.0f} after: the bound uses {peak:.0f}")
    print(f"{'algorithm':>9} {'f(actor)':>9} {'f(critic)':>9} {'GFLOP/update':>12} {'bound steps/s':>13} {'tspace':>12} {'SB3':>12} {'2x SB3':>12}")
    for algo, agent, rate, sb3 in rows:
        fa, fc = (sum(k * n for k, n in dense_kernels(net)) for net in (agent.actor, agent.critic))
        na, nc = PASSES[algo]
        gflop = 2 * BATCH * (na * fa + nc * fc) / 1e9
        bound = peak / gflop
        cell = lambda x: f"{x:.1f} ({100 * x / bound:.0f} %)" if x is not None else "-"
        print(f"{NAMES[algo]:>9} {fa:>9} {fc:>9} {gflop:>12.3f} {bound:>13.1f} {cell(rate):>12} {cell(sb3):>12} "
              f"{cell(2 * sb3) if sb3 else '-':>12}", flush=True)
    print("(in brackets: percent of the bound; 2x SB3 above 100 % cannot be reached in float32 on this machine's measured matmul rate)")


if __name__ == "__main__":
    sys.exit(main())
