"""RDPG against DDPG on a partially observed Pendulum: the angular velocity is hidden, the agent sees cos and sin of the angle only.

A feed-forward policy cannot tell a pendulum swinging up from one falling down at the same angle; an LSTM
policy can infer the velocity from consecutive observations. Both agents get the same number of environment
steps, the same random warm-up, the same exploration noise and the same discount, learning rates and hidden
layers; each seed is evaluated on 10 episodes without noise (RDPG's LSTM state cleared at each episode start).
Prints both mean returns per seed and their difference.

Not run by CI. Default budget (3 seeds x 12k steps, about 15 minutes on a 2-core machine):
    python bench/rdpg_pomdp.py
Reduced:
    python bench/rdpg_pomdp.py --steps 10000 --seeds 0
    TSPACE_BENCH_STEPS=10000 TSPACE_BENCH_SEEDS=0 python bench/rdpg_pomdp.py
"""
from __future__ import annotations
import argparse, os, sys, time
import numpy as np

COMMON = dict(gamma=0.98, actor_lr=1e-3, critic_lr=1e-3, tau=0.005, hidden_units=(128, 128), noise="gaussian",
              noise_sigma=0.1, buffer_size=200_000)
DDPG_HP = dict(batch_size=128)
RDPG_HP = dict(batch_size=16, lstm_units=64, bptt_window=20)
RDPG_OPTIONS = dict(max_len=40, updates_per_step=1.0)   # per new step, one update on 16 episode windows of 40 steps
# Tried on seed 0 at 10k steps: updates_per_step 0.25 did not learn (-1158); 1.0 with 16 x 40 reached -142 in 218 s;
# 32 windows x 24 steps reached -126 in 330 s.


def env_list(name: str, default: str) -> list[int]:
    return [int(x) for x in os.environ.get(name, default).replace(",", " ").split()]


def make_env():
    import gymnasium as gym

    class HideVelocity(gym.ObservationWrapper):
        "Pendulum without its angular velocity: observations are (cos theta, sin theta)."
        def __init__(self, env):
            super().__init__(env)
            box = env.observation_space
            self.observation_space = gym.spaces.Box(box.low[:2], box.high[:2], dtype=box.dtype)
        def observation(self, obs): return obs[:2]

    return HideVelocity(gym.make("Pendulum-v1"))


def evaluate(agent, seed: int, episodes: int) -> float:
    env = make_env()
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=10_000 + 100 * seed + i)
        agent.reset()
        done, total = False, 0.0
        while not done:
            obs, r, term, trunc, _ = env.step(agent.act(obs, explore=False))
            total += r
            done = term or trunc
        returns.append(total)
    return float(np.mean(returns))


def train(kind: str, seed: int, steps: int, warmup: int, eval_episodes: int) -> dict:
    from tspace.agent.dpg import make_agent
    from tspace.agent.spec import AgentSpec
    from tspace.config.agent import AgentConfig
    env = make_env()
    spec = AgentSpec.from_spaces(env.observation_space, env.action_space, name="Pendulum-v1 without velocity")
    if kind == "ddpg":
        agent = make_agent(spec, AgentConfig(kind="ddpg", seed=seed, **COMMON, **DDPG_HP), learning_starts=warmup)
    else:
        agent = make_agent(spec, AgentConfig(kind="rdpg", seed=seed, **COMMON, **RDPG_HP),
                           learning_starts=max(1, warmup // 200), **RDPG_OPTIONS)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    agent.reset()
    episode = {k: [] for k in ("s", "a", "r", "s2", "terminal")}
    t0, updates, learn_s = time.perf_counter(), 0, 0.0
    for t in range(steps):
        a = env.action_space.sample() if t < warmup else agent.act(obs)
        obs2, r, term, trunc, _ = env.step(a)
        for k, v in zip(episode, (obs, a, r, obs2, term)): episode[k].append(v)
        if kind == "ddpg":
            agent.observe({"s": obs, "a": a, "r": r, "s2": obs2, "terminal": term})
            if t >= warmup:
                t1 = time.perf_counter(); agent.learn(); learn_s += time.perf_counter() - t1; updates += 1
        obs = obs2
        if term or trunc:
            if kind == "rdpg":   # RDPG learns from whole episodes: store it, then updates_per_step updates per new step
                t1 = time.perf_counter()
                out = agent.learn({k: np.asarray(v, np.float32 if k != "terminal" else bool) for k, v in episode.items()})
                learn_s += time.perf_counter() - t1
                updates += out["updates"]
            episode = {k: [] for k in episode}
            obs, _ = env.reset()
            agent.reset()
    return {"return": evaluate(agent, seed, eval_episodes), "updates": updates, "learn_s": learn_s,
            "wall_s": time.perf_counter() - t0}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=int(os.environ.get("TSPACE_BENCH_STEPS", 12_000)))
    p.add_argument("--seeds", type=int, nargs="+", default=env_list("TSPACE_BENCH_SEEDS", "0 1 2"))
    p.add_argument("--warmup", type=int, default=2000, help="uniformly random steps before learning")
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--only", choices=["ddpg", "rdpg"], default=None, help="train one of the two agents only")
    p.add_argument("--rdpg-updates-per-step", type=float, default=RDPG_OPTIONS["updates_per_step"])
    p.add_argument("--rdpg-max-len", type=int, default=RDPG_OPTIONS["max_len"])
    p.add_argument("--rdpg-batch", type=int, default=RDPG_HP["batch_size"])
    args = p.parse_args()
    RDPG_OPTIONS.update(updates_per_step=args.rdpg_updates_per_step, max_len=args.rdpg_max_len)
    RDPG_HP.update(batch_size=args.rdpg_batch)
    kinds = (args.only,) if args.only else ("ddpg", "rdpg")
    print(f"Pendulum-v1 without angular velocity, {args.steps} steps x seeds {args.seeds}, {args.warmup} random warm-up steps; "
          f"shared {COMMON}; DDPG {DDPG_HP}; RDPG {RDPG_HP} {RDPG_OPTIONS}")
    rows = []
    for seed in args.seeds:
        res = {kind: train(kind, seed, args.steps, args.warmup, args.eval_episodes) for kind in kinds}
        rows.append((seed, res))
        print("  seed {}: ".format(seed) + " | ".join(
            f"{k.upper()} return {v['return']:8.1f} ({v['updates']} updates, {v['learn_s']:.0f} s learning, {v['wall_s']:.0f} s total)"
            for k, v in res.items()), flush=True)
    if len(kinds) < 2: return 0
    print(f"\n{'seed':>5} {'DDPG return':>12} {'RDPG return':>12} {'RDPG - DDPG':>12}")
    for seed, res in rows:
        print(f"{seed:>5} {res['ddpg']['return']:>12.1f} {res['rdpg']['return']:>12.1f} {res['rdpg']['return'] - res['ddpg']['return']:>12.1f}")
    d, r = (float(np.mean([res[k]["return"] for _, res in rows])) for k in ("ddpg", "rdpg"))
    print(f"{'mean':>5} {d:>12.1f} {r:>12.1f} {r - d:>12.1f}")
    print(f"\nRDPG beats DDPG on the partially observed task: {'yes' if r > d else 'NO'}")


if __name__ == "__main__":
    sys.exit(main())
