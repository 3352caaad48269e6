"""DDPG on Pendulum-v1: tspace's agent against Stable-Baselines3 DDPG with the same hyperparameters, in the same run.

For each seed: train for --steps environment steps, then evaluate 10 episodes without noise. Prints the mean
evaluation return, gradient steps per second (time spent in the update calls only, for both libraries) and
the latency of `act` on one observation (NumPy fast path), next to a compiled tf.function call and the TFLite
interpreter. SB3 runs when `stable-baselines3` is installed (skip it with --no-sb3).

Targets (issue 6): mean return >= -200 for every seed; gradient steps/s >= SB3's; act p99 < 200 us.

Full budget (20k steps x 3 seeds; about 25 minutes on a 2-core machine with SB3):
    python bench/ddpg_pendulum.py
Reduced budget (flags or environment variables):
    python bench/ddpg_pendulum.py --steps 12000 --seeds 0
    TSPACE_BENCH_STEPS=12000 TSPACE_BENCH_SEEDS=0 python bench/ddpg_pendulum.py

Hyperparameters: the RL Baselines3 Zoo values for DDPG on Pendulum-v1, used for both libraries: gamma 0.98,
learning rate 1e-3 (actor and critic), tau 0.005, batch 256, buffer 200k, 10k uniformly random steps before
learning (--learning-starts), one gradient step per environment step after that, Gaussian action noise 0.1
(in [-1, 1] action units), hidden layers (400, 300). Differences that remain: tspace scales observations by
the space bounds (angular velocity / 8) and feeds the action into the critic after its first layer; SB3
concatenates raw observation and action.
"""
from __future__ import annotations
import argparse, json, os, sys
import numpy as np
from common import env_list, evaluate, latency_report, run_worker, sb3_available, train_sb3, train_tspace

HP = dict(gamma=0.98, lr=1e-3, tau=0.005, batch_size=256, buffer_size=200_000, learning_starts=10_000,
          noise_sigma=0.1, hidden=(400, 300))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=int(os.environ.get("TSPACE_BENCH_STEPS", 20_000)), help="environment steps per seed")
    p.add_argument("--seeds", type=int, nargs="+", default=env_list("TSPACE_BENCH_SEEDS", "0 1 2"))
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--learning-starts", type=int, default=int(os.environ.get("TSPACE_BENCH_LEARNING_STARTS", HP["learning_starts"])))
    p.add_argument("--no-sb3", action="store_true", help="do not run Stable-Baselines3 even if installed")
    p.add_argument("--torch-threads", type=int, default=1,
                   help="torch intra-op threads for SB3 (1 is fastest for these small networks on a 2-core machine)")
    p.add_argument("--sb3-worker", type=int, default=None, help=argparse.SUPPRESS)   # internal: run SB3 for one seed, print JSON
    return p.parse_args()


def run_tspace(seed: int, steps: int, learning_starts: int, eval_episodes: int) -> dict:
    import gymnasium as gym
    from tspace.agent.ddpg import DDPG
    from tspace.config.agent import AgentConfig
    env = gym.make("Pendulum-v1")
    cfg = AgentConfig(kind="ddpg", actor_lr=HP["lr"], critic_lr=HP["lr"], gamma=HP["gamma"], tau=HP["tau"],
                      batch_size=HP["batch_size"], buffer_size=HP["buffer_size"], hidden_units=HP["hidden"],
                      noise="gaussian", noise_sigma=HP["noise_sigma"], seed=seed)
    agent = DDPG.from_spaces(env.observation_space, env.action_space, cfg, learning_starts=learning_starts)
    out = train_tspace(env, agent, steps, learning_starts, seed)
    ret = evaluate(lambda o: agent.act(o, explore=False), seed, eval_episodes)
    return {"return": ret, **out, "agent": agent}


def run_sb3(seed: int, steps: int, learning_starts: int, eval_episodes: int) -> dict:
    import gymnasium as gym
    from stable_baselines3 import DDPG as SB3DDPG
    from stable_baselines3.common.noise import NormalActionNoise
    env = gym.make("Pendulum-v1")
    model = SB3DDPG("MlpPolicy", env, learning_rate=HP["lr"], buffer_size=HP["buffer_size"], learning_starts=learning_starts,
                    batch_size=HP["batch_size"], tau=HP["tau"], gamma=HP["gamma"], train_freq=1, gradient_steps=1,
                    action_noise=NormalActionNoise(np.zeros(1), HP["noise_sigma"] * np.ones(1)),
                    policy_kwargs=dict(net_arch=list(HP["hidden"])), device="cpu", seed=seed, verbose=0)
    out = train_sb3(model, steps)
    ret = evaluate(lambda o: model.predict(o, deterministic=True)[0], seed, eval_episodes)
    return {"return": ret, **out}


def sb3_in_subprocess(seed: int, args) -> dict:
    "SB3 for one seed in its own process (see `common`)."
    return run_worker(__file__, ["--sb3-worker", str(seed), "--steps", str(args.steps), "--learning-starts", str(args.learning_starts),
                                 "--eval-episodes", str(args.eval_episodes), "--torch-threads", str(args.torch_threads)])


def main():
    args = parse_args()
    if args.sb3_worker is not None:
        import torch
        torch.set_num_threads(args.torch_threads)
        print(json.dumps(run_sb3(args.sb3_worker, args.steps, args.learning_starts, args.eval_episodes)))
        return 0
    sb3 = None if args.no_sb3 else sb3_available()
    if sb3 is None and not args.no_sb3:
        print("stable-baselines3 not installed: tspace only (pip install stable-baselines3 for the comparison)")
    have_sb3 = sb3 is not None
    import tensorflow as tf
    print(f"Pendulum-v1, {args.steps} steps x seeds {args.seeds}, learning starts after {args.learning_starts} random steps, "
          f"{args.eval_episodes} evaluation episodes; TensorFlow {tf.__version__}"
          + (f"; {sb3} ({args.torch_threads} thread(s), in a subprocess)" if have_sb3 else ""))
    rows, agent = [], None
    for seed in args.seeds:
        ours = run_tspace(seed, args.steps, args.learning_starts, args.eval_episodes)
        agent = ours.pop("agent")
        losses = ours.pop("losses")
        if losses:
            k = max(1, len(losses) // 10)
            print(f"  seed {seed}: tspace critic loss, mean of first/last {k} updates: {np.mean(losses[:k]):.3f} -> {np.mean(losses[-k:]):.3f}")
        theirs = sb3_in_subprocess(seed, args) if have_sb3 else None
        rows.append((seed, ours, theirs))
        print(f"  seed {seed}: tspace return {ours['return']:8.1f}, {ours['grad_steps_s']:6.1f} grad steps/s ({ours['updates']} updates, "
              f"{ours['wall_s']:.0f} s)" + (f" | SB3 return {theirs['return']:8.1f}, {theirs['grad_steps_s']:6.1f} grad steps/s "
                                             f"({theirs['updates']} updates, {theirs['wall_s']:.0f} s)" if theirs else ""), flush=True)
    print()
    head = f"{'seed':>5} {'tspace return':>14} {'tspace gs/s':>12}"
    if have_sb3: head += f" {'SB3 return':>11} {'SB3 gs/s':>9} {'gs/s ratio':>11}"
    print(head)
    for seed, o, s in rows:
        line = f"{seed:>5} {o['return']:>14.1f} {o['grad_steps_s']:>12.1f}"
        if s: line += f" {s['return']:>11.1f} {s['grad_steps_s']:>9.1f} {o['grad_steps_s'] / s['grad_steps_s']:>10.2f}x"
        print(line)
    mean = lambda key, i: float(np.mean([r[i][key] for r in rows]))
    line = f"{'mean':>5} {mean('return', 1):>14.1f} {mean('grad_steps_s', 1):>12.1f}"
    if have_sb3: line += f" {mean('return', 2):>11.1f} {mean('grad_steps_s', 2):>9.1f} {mean('grad_steps_s', 1) / mean('grad_steps_s', 2):>10.2f}x"
    print(line)
    lat = latency_report(agent)
    print("\nlatency of one action on one observation (hidden (400, 300)), microseconds:")
    for name, v in lat.items():
        print(f"  {name:<12} p50 {v['p50_us']:8.1f}   p99 {v['p99_us']:8.1f}")
    print("\ntargets:")
    print(f"  return >= -200 for every seed: {'yes' if all(r[1]['return'] >= -200 for r in rows) else 'NO'}"
          f" (min {min(r[1]['return'] for r in rows):.1f})")
    if have_sb3:
        ratio = mean('grad_steps_s', 1) / mean('grad_steps_s', 2)
        print(f"  gradient steps/s >= SB3: {'yes' if ratio >= 1 else 'NO'} ({ratio:.2f}x)")
    print(f"  act p99 < 200 us: {'yes' if lat['act']['p99_us'] < 200 else 'NO'} ({lat['act']['p99_us']:.1f} us)")
    if args.steps < 20_000 or len(args.seeds) < 3:
        print(f"\nreduced budget ({args.steps} steps, {len(args.seeds)} seed(s)); the issue's figures need 20000 steps x 3 seeds")


if __name__ == "__main__":
    sys.exit(main())
