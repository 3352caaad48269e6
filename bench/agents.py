"""tspace's agents (DDPG, TD3, SAC) side by side with Stable-Baselines3, in one run: on the truck, on Pendulum-v1, and in speed.

Issue 21. Three sections, each with its goal line:

1. Truck (`tspace/TruckEnergy-v0`, trained on the training cycles, evaluated without noise on the held-out cycle
   `tspace.sim.cycles.HELDOUT_CYCLE` with `tspace.sim.env.run_episode`, seed 0, next to the stock map driven the same way).
   The same budget for every run: 15,000 steps (--steps), 2,000 uniformly random warm-up steps (--warmup), then one
   gradient step per environment step; gamma 0.99, learning rate 1e-3 (actor, critics, SAC's temperature), tau 0.005,
   batch 256, replay of every step, Gaussian action noise 0.1 in [-1, 1] units (not for SAC: it samples its own policy),
   hidden layers (400, 300). Runs: tspace DDPG, TD3, SAC against SB3 TD3 and SAC. SB3's MlpPolicy needs flat spaces: its
   side only is wrapped (gymnasium `FlattenObservation` and `FlatAction` below); both sides are evaluated by the same
   `run_episode` on the unwrapped env. Per run and seed: held-out Wh/km, the saving against the stock map and as a
   fraction of the best static map's saving, speed RMSE, gradient steps per second (time in the update calls only).
   Goal: tspace's best agent (best mean saving) saves at least as much as SB3's best run on every seed.
2. Pendulum-v1 with the RL Baselines3 Zoo hyperparameters (rl-baselines3-zoo, hyperparams/td3.yml and sac.yml,
   `Pendulum-v1`, master of 2026-04-23), the same for both libraries:
   - TD3: n_timesteps 20000, gamma 0.98, buffer_size 200000, learning_starts 10000, noise_type normal, noise_std 0.1,
     train_freq 1, gradient_steps 1, learning_rate 1e-3, net_arch [400, 300]; SB3's defaults for the rest: batch 256,
     tau 0.005, policy_delay 2, target_policy_noise 0.2, target_noise_clip 0.5.
   - SAC: n_timesteps 20000, learning_rate 1e-3; SB3's defaults for the rest: buffer 1e6, learning_starts 100,
     batch 256, tau 0.005, gamma 0.99, train_freq 1, gradient_steps 1, ent_coef 'auto' (starts at 1.0, its learning
     rate the same 1e-3), target_entropy -dim(A), net_arch [256, 256].
   Mean evaluation return (10 episodes without noise) over seeds. Goal: tspace's mean at least SB3's, per algorithm.
   (DDPG on Pendulum has its own bench: bench/ddpg_pendulum.py.)
3. Speed, one thread each (TensorFlow intra/inter-op threads 1 in this process; torch.set_num_threads(1) in SB3's):
   gradient steps per second of each algorithm on the truck's shapes and hyperparameters (a replay of 5,000 random
   transitions, --speed-updates updates timed after a warm-up; tspace with the XLA-compiled update off and on when
   `AgentConfig` has the switch), ratio tspace/SB3 (goal >= 2x); and `act` p99 on one observation for each tspace agent,
   NumPy fast path and TFLite interpreter (goal < 30 us), for the truck's networks and Pendulum's.

Differences that remain between the libraries (as in bench/ddpg_pendulum.py): tspace scales observations by the space
bounds and feeds the action into its critics after their first layer; SB3 concatenates the raw (flattened) observation and
the action. SB3 runs in its own process (torch and TensorFlow never share one; see bench/common.py). tspace's SAC is used when
`tspace.agent.sac` imports; the output says when it is missing.

Full budget (3 seeds; about 2.5 hours on a quiet 2-core machine, estimated from the reduced runs):
    python bench/agents.py
Reduced budget / smoke run:
    python bench/agents.py --seeds 0 1 --algos td3,sac --steps 15000 --envs truck
    python bench/agents.py --quick          # tiny budget, < 3 minutes: checks the plumbing, not the figures
"""
from __future__ import annotations
import argparse, json, math, sys, time
import numpy as np
from common import (evaluate, latency_report, markdown_table, one_thread_tf, run_worker, sb3_available,
                    spread_actor, train_sb3, train_tspace)

ALGOS = ("ddpg", "td3", "sac")
TRUCK = dict(steps=15_000, learning_starts=2_000, gamma=0.99, lr=1e-3, tau=0.005, batch_size=256, noise_sigma=0.1, hidden=(400, 300),
             encoding="span", reward_scale=1.0, reward_center=False, action_dims="full")
"The truck budget of issue 21, the same for every run (buffer_size: every step)."
TRUCK_SB3_ALGOS = ("td3", "sac")
"The SB3 runs on the truck (issue 21: tspace DDPG, TD3, SAC against SB3 TD3 and SAC)."
PENDULUM = {
    "td3": dict(steps=20_000, learning_starts=10_000, gamma=0.98, lr=1e-3, tau=0.005, batch_size=256, buffer_size=200_000,
                noise_sigma=0.1, hidden=(400, 300)),
    "sac": dict(steps=20_000, learning_starts=100, gamma=0.99, lr=1e-3, tau=0.005, batch_size=256, buffer_size=1_000_000,
                noise_sigma=None, hidden=(256, 256)),
}
"RL Zoo hyperparameters for Pendulum-v1 (see the docstring)."
BEST_STATIC_SAVING_PCT = 1.06
"""Saving (%) of the best static map on the held-out cycle hwfet: the oracle of `python bench/energy.py --oracle-only`
(static families cut as deep as the limits allow, then CMA-ES; rows 7..10 lowered by 245.6 Nm, cycle scenario). Issue 21
quoted 0.53 %, the figure of the coarser family grid of commit 5c6357b."""
QUICK = dict(steps=500, warmup=250, pendulum_steps=600, pendulum_warmup=300, eval_episodes=2, speed_updates=30, latency_n=2000)
"The --quick budget: every code path once, in under 3 minutes; its figures mean nothing."
SPEED_REPLAY = 5_000
"Random transitions in the replay of the speed section."


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    words = lambda s: [w for w in s.replace(",", " ").split() if w]
    p.add_argument("--steps", type=int, default=None, help=f"truck: environment steps per run (default {TRUCK['steps']})")
    p.add_argument("--warmup", type=int, default=None, help=f"truck: uniformly random steps before learning (default {TRUCK['learning_starts']})")
    p.add_argument("--pendulum-steps", type=int, default=None, help="Pendulum: environment steps per run (default: the zoo's 20000)")
    p.add_argument("--seeds", type=str, nargs="+", default=["0", "1", "2"], help="seeds, e.g. 0 1 2 or 0,1")
    p.add_argument("--algos", type=str, default=",".join(ALGOS), help="algorithms to run, of ddpg,td3,sac")
    p.add_argument("--envs", type=str, default="truck,pendulum", help="environments, of truck,pendulum")
    p.add_argument("--eval-episodes", type=int, default=10, help="Pendulum evaluation episodes")
    p.add_argument("--speed-updates", type=int, default=1000, help="timed updates per library and algorithm in the speed section")
    p.add_argument("--no-speed", action="store_true", help="leave out the speed section (gradient steps/s and act latency)")
    p.add_argument("--no-sb3", action="store_true", help="tspace only, even if stable-baselines3 is installed")
    p.add_argument("--sb3-only", action="store_true", help="SB3 only (e.g. its side of a run split over two processes)")
    p.add_argument("--action-dims", choices=ACTION_DIMS, default=TRUCK["action_dims"],
                   help="truck, both libraries: what the agent outputs; `full`: every cell of the rows (4 x 17 = 68 values); `rows`: one value "
                        "per speed row, the same for each of its pedal columns (4); `uniform`: one value for every cell (1)")
    p.add_argument("--encoding", choices=("span", "offset"), default=TRUCK["encoding"],
                   help="truck: how an action value becomes a torque change (ActionSpec.encoding), the same for both libraries")
    p.add_argument("--reward-scale", type=float, default=TRUCK["reward_scale"],
                   help="truck: rewards times this for learning, both libraries (tspace: AgentConfig.reward_scale; SB3: a reward wrapper)")
    p.add_argument("--gamma", type=float, default=TRUCK["gamma"],
                   help="truck: discount of both libraries (an action's effect on energy is mostly within a few steps of 1.5 s)")
    p.add_argument("--reward-center", action="store_true",
                   help="truck, tspace only: AgentConfig.reward_center (rewards minus their running mean in every update); SB3 has no such option")
    p.add_argument("--critic-action-input", choices=("input", "hidden"), default=None,
                   help="tspace's critics read the action at their input or after their first layer (AgentConfig.critic_action_input; default: the agent's own)")
    p.add_argument("--quick", action="store_true", help="tiny budget smoke run (< 3 minutes): checks the plumbing, not the figures")
    p.add_argument("--sb3-worker", type=str, default=None, help=argparse.SUPPRESS)   # internal: one SB3 job (JSON), prints JSON
    a = p.parse_args(argv)
    a.seeds = [int(s) for s in words(" ".join(a.seeds))]
    a.algos = words(a.algos)
    a.envs = words(a.envs)
    bad = [x for x in a.algos if x not in ALGOS] + [x for x in a.envs if x not in ("truck", "pendulum")]
    if bad: p.error(f"unknown algorithm or environment: {bad}")
    if a.quick:
        a.steps = a.steps or QUICK["steps"]
        a.warmup = a.warmup or QUICK["warmup"]
        a.pendulum_steps = a.pendulum_steps or QUICK["pendulum_steps"]
        a.seeds = a.seeds if "--seeds" in (argv or sys.argv) else [0]
        a.eval_episodes = min(a.eval_episodes, QUICK["eval_episodes"])
        a.speed_updates = min(a.speed_updates, QUICK["speed_updates"])
    return a


def hyperparams(env: str, algo: str, args) -> dict:
    "The hyperparameters of one run, the same for both libraries."
    if env == "truck":
        hp = {**TRUCK, "steps": args.steps or TRUCK["steps"], "learning_starts": args.warmup if args.warmup is not None else TRUCK["learning_starts"]}
        hp["buffer_size"] = hp["steps"]
        hp["encoding"], hp["reward_scale"], hp["reward_center"], hp["gamma"] = args.encoding, args.reward_scale, args.reward_center, args.gamma
        hp["action_dims"] = args.action_dims
        if algo == "sac": hp["noise_sigma"] = None
        return hp | {"critic_action_input": args.critic_action_input}
    hp = dict(PENDULUM["sac" if algo == "sac" else "td3"], critic_action_input=args.critic_action_input)
    if args.pendulum_steps:     # a shorter run keeps at least half its steps for learning
        hp["steps"] = args.pendulum_steps
        hp["learning_starts"] = min(hp["learning_starts"], QUICK["pendulum_warmup"] if args.quick else hp["steps"] // 2)
    return hp


# --- environments ---
def truck_env(cycle=None, encoding: str = TRUCK["encoding"]):
    "The truck environment with the actions of `encoding` (training cycles unless `cycle` is given)."
    from tspace.data.core import ActionSpec
    from tspace.sim.env import TruckEnergyEnv
    kw = {} if cycle is None else {"cycle": cycle}
    return TruckEnergyEnv(**kw, action_spec=ActionSpec(encoding=encoding))


ACTION_DIMS = ("full", "rows", "uniform")
"What a truck agent outputs: every cell of the rows, one value per row, or one value for all (`--action-dims`; `tspace.sim.env.CoarseActions`)."

def coarse_truck_env(env, dims: str):
    "`env` (the truck) with the actions of `dims` (`ACTION_DIMS`): `full` gives `env` itself, else `tspace.sim.env.CoarseActions`."
    from tspace.sim.env import CoarseActions
    return env if dims == "full" else CoarseActions(env, dims)


def flat_truck_env(encoding: str = TRUCK["encoding"], reward_scale: float = 1.0, dims: str = "full"):
    "The truck for SB3's MlpPolicy: flat observation (frame_len*signals) and flat action vectors (rows*columns, or `dims`' 4 or 1), rewards x `reward_scale`."
    import gymnasium as gym
    from gymnasium.wrappers import FlattenObservation, TransformReward

    class FlatAction(gym.ActionWrapper):
        "A flat Box action of rows*columns values, reshaped into the env's (rows, columns) action."
        def __init__(self, env):
            super().__init__(env)
            self.action_space = gym.spaces.Box(-1.0, 1.0, (int(np.prod(env.action_space.shape)),), np.float32)
        def action(self, action): return np.asarray(action, np.float32).reshape(self.env.action_space.shape)

    truck = truck_env(encoding=encoding)
    env = FlattenObservation(FlatAction(truck) if dims == "full" else coarse_truck_env(truck, dims))
    return env if reward_scale == 1.0 else TransformReward(env, lambda r: reward_scale * r)


def truck_eval(policy=None, encoding: str = TRUCK["encoding"]) -> dict:
    "Drive the held-out cycle once (seed 0) with `policy(obs) -> action` without noise; None: the stock map."
    from tspace.sim.cycles import HELDOUT_CYCLE
    from tspace.sim.env import run_episode
    r = run_episode(truck_env(HELDOUT_CYCLE, encoding), policy, seed=0)
    return {k: float(r[k]) for k in ("wh_per_km", "speed_rmse_kmh", "distance_km", "reward")}   # reward: the held-out return, unscaled


def best_static_saving_pct() -> tuple[float, str]:
    "The best static map's saving on the held-out cycle (%) and where the figure comes from."
    try:
        from energy import best_static_map
    except ImportError:
        return BEST_STATIC_SAVING_PCT, "the oracle of bench/energy.py --oracle-only (constant)"
    from tspace.config.run import load_config
    from tspace.sim.cycles import HELDOUT_CYCLE
    cfg = load_config(None)
    _, (saving, name, _) = best_static_map(HELDOUT_CYCLE, cfg.seed + 10_000, cfg)
    return float(saving), f"bench/energy.py best_static_map: {name}"


# --- tspace side (this process) ---
def tspace_missing(algo: str) -> str | None:
    "Why tspace's `algo` cannot be built here (its module does not import), or None."
    from tspace.agent.dpg import agent_class
    try: agent_class(algo)
    except Exception as e: return f"{type(e).__name__}: {e}"
    return None


def xla_field() -> str | None:
    "The name of the XLA switch of `AgentConfig`, or None when it has none."
    from tspace.config.agent import AgentConfig
    return next((f for f in ("jit_compile", "xla") if f in AgentConfig.model_fields), None)


def tspace_agent(algo: str, hp: dict, seed: int, observation_space, action_space, xla: bool | None = None):
    "tspace's `algo` for the spaces, with the run's hyperparameters; `xla` None: the agent's default."
    from tspace.agent.dpg import make_agent
    from tspace.agent.spec import AgentSpec
    from tspace.config.agent import AgentConfig
    fields = dict(kind=algo, actor_lr=hp["lr"], critic_lr=hp["lr"], gamma=hp["gamma"], tau=hp["tau"], batch_size=hp["batch_size"],
                  buffer_size=hp["buffer_size"], hidden_units=tuple(hp["hidden"]), seed=seed)
    if hp["noise_sigma"] is not None: fields.update(noise="gaussian", noise_sigma=hp["noise_sigma"])
    if algo == "sac": fields["temperature_lr"] = hp["lr"]
    if hp.get("reward_scale", 1.0) != 1.0: fields["reward_scale"] = hp["reward_scale"]
    if hp.get("reward_center"): fields["reward_center"] = True
    if xla is not None: fields[xla_field()] = xla
    if hp.get("critic_action_input") is not None: fields["critic_action_input"] = hp["critic_action_input"] == "input"
    spec = AgentSpec.from_spaces(observation_space, action_space)
    return make_agent(spec, AgentConfig(**fields), learning_starts=hp["learning_starts"])


def run_tspace(env: str, algo: str, seed: int, hp: dict, eval_episodes: int) -> dict:
    "Train and evaluate tspace's `algo` on `env` for one seed."
    import gymnasium as gym
    dims = hp.get("action_dims", "full")
    e = coarse_truck_env(truck_env(encoding=hp["encoding"]), dims) if env == "truck" else gym.make("Pendulum-v1")
    agent = tspace_agent(algo, hp, seed, e.observation_space, e.action_space)
    out = train_tspace(e, agent, hp["steps"], hp["learning_starts"], seed)
    del out["losses"]
    out["xla"] = bool(getattr(agent, "jit_compile", False))
    policy = lambda o: agent.act(o, explore=False)
    if env != "truck": return {**out, "return": evaluate(policy, seed, eval_episodes)}
    return {**out, **truck_eval(policy if dims == "full" else lambda o: e.action(policy(o)), hp["encoding"])}


def fill_replay(add, observation_space, action_space, n: int, seed: int = 0) -> None:
    "Call `add(s, a, r, s2)` with `n` random transitions inside the spaces (the speed section's replay)."
    rng = np.random.default_rng(seed)
    lo, hi = observation_space.low, observation_space.high
    s = (lo + (hi - lo) * rng.random((n + 1, *lo.shape))).astype(np.float32)
    a = rng.uniform(-1, 1, (n, *action_space.shape)).astype(np.float32)
    add(s[:-1], a, rng.normal(size=n).astype(np.float32), s[1:])


def speed_tspace(algo: str, hp: dict, xla: bool | None, updates: int) -> dict:
    "Gradient steps per second of tspace's `algo` on the truck's shapes: `updates` `learn()` calls (sample + update) after a warm-up."
    from tspace.sim.env import TruckEnergyEnv
    e = TruckEnergyEnv()
    agent = tspace_agent(algo, {**hp, "buffer_size": SPEED_REPLAY}, 0, e.observation_space, e.action_space, xla)
    fill_replay(lambda s, a, r, s2: agent.observe({"s": s, "a": a, "r": r, "s2": s2, "terminal": np.zeros(len(r), bool)}),
                e.observation_space, e.action_space, SPEED_REPLAY)
    for _ in range(max(10, updates // 10)): agent.learn()
    t0 = time.perf_counter()
    for _ in range(updates): agent.learn()
    dt = time.perf_counter() - t0
    return {"grad_steps_s": updates / dt, "xla": bool(getattr(agent, "jit_compile", False))}


# --- SB3 side (its own process) ---
def sb3_model(algo: str, env, hp: dict, seed: int):
    "SB3's `algo` on `env` with the run's hyperparameters."
    import stable_baselines3 as sb3
    from stable_baselines3.common.noise import NormalActionNoise
    cls = {"ddpg": sb3.DDPG, "td3": sb3.TD3, "sac": sb3.SAC}[algo]
    kw = dict(learning_rate=hp["lr"], buffer_size=hp["buffer_size"], learning_starts=hp["learning_starts"], batch_size=hp["batch_size"],
              tau=hp["tau"], gamma=hp["gamma"], train_freq=1, gradient_steps=1, policy_kwargs=dict(net_arch=list(hp["hidden"])),
              device="cpu", seed=seed, verbose=0)
    if hp["noise_sigma"] is not None:
        n = int(np.prod(env.action_space.shape))
        kw["action_noise"] = NormalActionNoise(np.zeros(n), hp["noise_sigma"] * np.ones(n))
    return cls("MlpPolicy", env, **kw)


def sb3_job(job: dict) -> dict:
    "One SB3 job in this (child) process: `train` (train and evaluate one seed) or `speed` (time updates on the truck's shapes)."
    import torch
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    import gymnasium as gym
    algo, hp = job["algo"], job["hp"]
    if job["what"] == "speed":
        from stable_baselines3.common.logger import Logger
        env = flat_truck_env()
        model = sb3_model(algo, env, {**hp, "buffer_size": SPEED_REPLAY}, 0)
        model.set_logger(Logger(folder=None, output_formats=[]))
        rb = model.replay_buffer
        def add(s, a, r, s2):
            for i in range(len(r)): rb.add(s[i].reshape(1, -1), s2[i].reshape(1, -1), a[i].reshape(1, -1), r[i:i + 1], np.zeros(1), [{}])
        fill_replay(add, env.unwrapped.observation_space, env.unwrapped.action_space, SPEED_REPLAY)
        for _ in range(max(10, job["updates"] // 10)): model.train(gradient_steps=1, batch_size=hp["batch_size"])
        t0 = time.perf_counter()
        for _ in range(job["updates"]): model.train(gradient_steps=1, batch_size=hp["batch_size"])
        return {"grad_steps_s": job["updates"] / (time.perf_counter() - t0)}
    seed = job["seed"]
    if job["env"] == "truck":
        env = flat_truck_env(hp["encoding"], hp["reward_scale"], hp.get("action_dims", "full"))
        wrapper = env
        while not isinstance(wrapper, gym.ActionWrapper): wrapper = wrapper.env    # FlatAction or CoarseActions
        expand = wrapper.action                                                    # the agent's action as the truck's
        model = sb3_model(algo, env, hp, seed)
        out = train_sb3(model, hp["steps"])
        return {**out, **truck_eval(lambda o: expand(model.predict(o.reshape(-1), deterministic=True)[0]), hp["encoding"])}
    model = sb3_model(algo, gym.make("Pendulum-v1"), hp, seed)
    out = train_sb3(model, hp["steps"])
    return {**out, "return": evaluate(lambda o: model.predict(o, deterministic=True)[0], seed, job["eval_episodes"])}


def sb3_run(job: dict) -> dict:
    "`sb3_job(job)` in a child process."
    return run_worker(__file__, ["--sb3-worker", json.dumps(job)])


# --- report ---
NAMES = {"ddpg": "DDPG", "td3": "TD3", "sac": "SAC"}


def label(lib: str, algo: str) -> str: return f"{'tspace' if lib == 'tspace' else 'SB3'} {NAMES[algo]}"


def saving_pct(wh: float, ref_wh: float) -> float: return 100 * (1 - wh / ref_wh)


def spread(values, fmt: str = ".0f") -> str:
    "min-max of `values` (one number when they round the same)."
    lo, hi = format(min(values), fmt), format(max(values), fmt)
    return lo if lo == hi else f"{lo}-{hi}"


def run_line(env: str, lib: str, algo: str, seed: int, r: dict, stock: dict | None) -> str:
    "One progress line for a finished run."
    head = f"  {env} seed {seed} {label(lib, algo):<12}"
    if "error" in r: return f"{head} FAILED: {r['error']}"
    what = (f"{r['wh_per_km']:8.2f} Wh/km ({saving_pct(r['wh_per_km'], stock['wh_per_km']):+.2f} %), RMSE {r['speed_rmse_kmh']:.2f} km/h, "
            f"return {r['reward'] - stock['reward']:+.1f} Wh over stock's"
            if env == "truck" else f"return {r['return']:8.1f}")
    xla = "" if "xla" not in r else f", XLA {'on' if r['xla'] else 'off'}"
    return f"{head} {what}, {r['grad_steps_s']:6.1f} grad steps/s ({r['updates']} updates{xla}, {r['wall_s']:.0f} s)"


def truck_table(results: dict, seeds: list[int], stock: dict, static_pct: float) -> tuple[str, dict]:
    "The truck's Markdown table and each run's saving per seed."
    static_wh = stock["wh_per_km"] * (1 - static_pct / 100)
    rows, savings = [], {}
    for (env, lib, algo), per_seed in results.items():
        if env != "truck": continue
        ok = {s: r for s, r in per_seed.items() if "error" not in r}
        cells = [f"{ok[s]['wh_per_km']:.2f} ({saving_pct(ok[s]['wh_per_km'], stock['wh_per_km']):.2f} %)" if s in ok else "failed" for s in seeds]
        if not ok:
            rows.append([label(lib, algo), *cells, "", "", "", "", ""])
            continue
        savings[(lib, algo)] = {s: saving_pct(r["wh_per_km"], stock["wh_per_km"]) for s, r in ok.items()}
        rows.append([label(lib, algo), *cells, f"{np.mean(list(savings[(lib, algo)].values())):.2f} %",
                     f"{np.mean([saving_pct(r['wh_per_km'], static_wh) for r in ok.values()]):+.2f} %",
                     f"{np.mean([r['speed_rmse_kmh'] for r in ok.values()]):.2f}",
                     f"{np.mean([r['reward'] - stock['reward'] for r in ok.values()]):+.1f}", spread([r["grad_steps_s"] for r in ok.values()])])
    header = ["run", *[f"seed {s} Wh/km (saving)" for s in seeds], "mean saving", "mean saving vs best static map", "speed RMSE km/h",
              "return over stock's, Wh (what the agents maximise)", "grad steps/s"]
    return markdown_table(header, rows), savings


def pendulum_table(results: dict, seeds: list[int]) -> tuple[str, dict]:
    "Pendulum's Markdown table and each run's mean return."
    rows, means = [], {}
    for (env, lib, algo), per_seed in results.items():
        if env != "pendulum": continue
        ok = {s: r for s, r in per_seed.items() if "error" not in r}
        if ok: means[(lib, algo)] = float(np.mean([r["return"] for r in ok.values()]))
        rows.append([label(lib, algo), *[f"{ok[s]['return']:.1f}" if s in ok else "failed" for s in seeds],
                     f"{means[(lib, algo)]:.1f}" if ok else "", spread([r["grad_steps_s"] for r in ok.values()]) if ok else ""])
    return markdown_table(["run", *[f"seed {s} return" for s in seeds], "mean return", "grad steps/s"], rows), means


def speed_section(args, algos: list[str], have_sb3: bool, xla: str | None, tspace: bool = True) -> dict:
    "Gradient steps/s per algorithm (tspace with XLA off and on, SB3) and act latency of each tspace agent; prints as it goes."
    import gymnasium as gym
    from tspace.sim.env import TruckEnergyEnv
    out = {}
    n_lat = QUICK["latency_n"] if args.quick else 20_000
    settings = ((False, True) if xla else (None,)) if tspace else ()
    for algo in algos:
        hp = hyperparams("truck", algo, args)
        row = out.setdefault(algo, {})
        for setting in settings:
            key = "tspace" if setting is None else f"tspace xla={'on' if setting else 'off'}"
            try: row[key] = speed_tspace(algo, hp, setting, args.speed_updates)["grad_steps_s"]
            except Exception as e: row[key] = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:160]}"
        if have_sb3 and algo in ("ddpg", "td3", "sac"):
            try: row["sb3"] = sb3_run({"what": "speed", "algo": algo, "hp": hp, "updates": args.speed_updates})["grad_steps_s"]
            except Exception as e: row["sb3"] = f"failed: {str(e).splitlines()[0][:160]}"
        for env in ("truck", "pendulum") if tspace else ():
            e = TruckEnergyEnv() if env == "truck" else gym.make("Pendulum-v1")
            ehp = hp if env == "truck" else hyperparams("pendulum", algo, args)
            try:
                agent = tspace_agent(algo, ehp, 0, e.observation_space, e.action_space)
                spread_actor(agent)               # so the int8 export's error is that of a trained actor's outputs
                lat = latency_report(agent, n=n_lat)
                row[f"latency {env}"] = lat
            except Exception as err: row[f"latency {env}"] = f"failed: {type(err).__name__}: {str(err).splitlines()[0][:160]}"
        print(f"  speed {NAMES[algo]}: " + ", ".join(f"{k} {v:.1f} grad steps/s" if isinstance(v, float) else f"{k} {v}"
                                                  for k, v in row.items() if not k.startswith("latency"))
              + "".join(f"; act p99 {env} NumPy {row[f'latency {env}']['act']['p99_us']:.1f} us, TFLite "
                        f"{row[f'latency {env}']['tflite']['p99_us']:.1f} us, TFLite int8 {row[f'latency {env}']['tflite_int8']['p99_us']:.1f} us, predict (tf.function) {row[f'latency {env}']['tf_function']['p99_us']:.0f} us"
                        if isinstance(row[f"latency {env}"], dict) else f"; latency {env} {row[f'latency {env}']}"
                        for env in ("truck", "pendulum") if f"latency {env}" in row), flush=True)
    return out


def speed_table(speed: dict) -> str:
    "The speed section as a Markdown table."
    keys = sorted({k for row in speed.values() for k in row if k.startswith("tspace")}, key=lambda k: (k != "tspace", k))
    num = lambda v: f"{v:.1f}" if isinstance(v, float) else "failed" if v else ""
    p99 = lambda row, env, path: (f"{row[f'latency {env}'][path]['p99_us']:.1f}" if isinstance(row.get(f"latency {env}"), dict)
                                  else "failed" if f"latency {env}" in row else "")
    with_sb3 = any("sb3" in row for row in speed.values())
    rows = []
    for algo, row in speed.items():
        best = max((row[k] for k in keys if isinstance(row.get(k), float)), default=math.nan)
        ratio = f"{best / row['sb3']:.2f}x" if isinstance(row.get("sb3"), float) and not math.isnan(best) else ""
        rows.append([NAMES[algo], *[num(row.get(k)) for k in keys], *([num(row.get("sb3")), ratio] if with_sb3 else []),
                     f"{p99(row, 'truck', 'act')} / {p99(row, 'truck', 'tflite')} / {p99(row, 'truck', 'tflite_int8')}",
                     f"{p99(row, 'pendulum', 'act')} / {p99(row, 'pendulum', 'tflite')} / {p99(row, 'pendulum', 'tflite_int8')}"])
    header = ["algorithm", *[f"{k} grad steps/s" for k in keys], *(["SB3 grad steps/s", "tspace (faster) / SB3"] if with_sb3 else []),
              "act p99 truck us (NumPy / TFLite / TFLite int8)", "act p99 Pendulum us (NumPy / TFLite / TFLite int8)"]
    return markdown_table(header, rows)


def goal_lines(savings: dict, means: dict, speed: dict, seeds: list[int]) -> list[str]:
    "The goal lines of issue 21, each `yes` or `NO` with its figures."
    lines = []
    ours = {a: s for (lib, a), s in savings.items() if lib == "tspace"}
    theirs = {a: s for (lib, a), s in savings.items() if lib == "sb3"}
    if ours:
        best = max(ours, key=lambda a: np.mean(list(ours[a].values())))
        lines.append(f"truck winner (default-agent recommendation): tspace {NAMES[best]}, mean saving {np.mean(list(ours[best].values())):.2f} %")
        if theirs:
            per_seed, ok = [], True
            for s in seeds:
                sb3 = {a: v[s] for a, v in theirs.items() if s in v}
                if s not in ours[best] or not sb3:
                    per_seed.append(f"seed {s}: missing")
                    ok = False
                    continue
                top = max(sb3, key=sb3.get)
                ok &= ours[best][s] >= sb3[top]
                per_seed.append(f"seed {s}: {ours[best][s]:.2f} % vs SB3 {NAMES[top]} {sb3[top]:.2f} %")
            lines.append(f"truck: tspace's best agent saves at least as much as SB3's best on every seed: {'yes' if ok else 'NO'} ({'; '.join(per_seed)})")
    for algo in ALGOS:
        if ("tspace", algo) in means and ("sb3", algo) in means:
            o, t = means[("tspace", algo)], means[("sb3", algo)]
            lines.append(f"Pendulum {NAMES[algo]}: mean return at least SB3's: {'yes' if o >= t else 'NO'} ({o:.1f} vs {t:.1f})")
    for algo, row in speed.items():
        ts = {k: v for k, v in row.items() if k.startswith("tspace") and isinstance(v, float)}
        if ts and isinstance(row.get("sb3"), float):
            k = max(ts, key=ts.get)
            r = ts[k] / row["sb3"]
            lines.append(f"speed {NAMES[algo]}: grad steps/s at least 2x SB3's: {'yes' if r >= 2 else 'NO'} ({r:.2f}x, {k})")
        for env in ("truck", "pendulum"):
            lat = row.get(f"latency {env}")
            if isinstance(lat, dict):
                a, t = lat["act"]["p99_us"], lat["tflite"]["p99_us"]
                floor = f"; the actor's matrix products alone {lat['products']['p99_us']:.1f} us" if "products" in lat else ""
                q = lat.get("tflite_int8")
                int8 = (f", TFLite int8 {'yes' if q['p99_us'] < 30 else 'NO'} ({q['p99_us']:.1f} us; actions within {q['max_err']:.3f} "
                        f"of float32's, mean {q['mean_err']:.4f}, on actions of mean size {q['mean_abs_action']:.2f})") if q else ""
                lines.append(f"act p99 {NAMES[algo]} {env} < 30 us: NumPy {'yes' if a < 30 else 'NO'} ({a:.1f} us), "
                             f"TFLite {'yes' if t < 30 else 'NO'} ({t:.1f} us){int8}{floor}")
            elif lat is not None: lines.append(f"act p99 {NAMES[algo]} {env} < 30 us: NO ({lat})")
    return lines


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.sb3_worker is not None:
        print(json.dumps(sb3_job(json.loads(args.sb3_worker))))
        return 0
    t_start = time.perf_counter()
    one_thread_tf()
    import tensorflow as tf
    sb3 = None if args.no_sb3 else sb3_available()
    if sb3 is None and not args.no_sb3: print("stable-baselines3 not installed: tspace only (pip install -e '.[bench]' for the comparison)")
    xla = xla_field()
    missing = {a: tspace_missing(a) for a in args.algos}
    print(f"tspace agents vs Stable-Baselines3: envs {args.envs}, algorithms {args.algos}, seeds {args.seeds}; TensorFlow {tf.__version__}"
          + (f"; {sb3} in a subprocess" if sb3 else "") + "; one thread each" + (" [--quick: figures mean nothing]" if args.quick else ""))
    for a, why in missing.items():
        if why: print(f"tspace {NAMES[a]}: MISSING ({why}); its runs are left out")
    print(f"XLA switch: AgentConfig.{xla} (training runs use each agent's default; the speed section measures off and on)" if xla
          else "XLA switch: none in AgentConfig (the speed section measures the agents as they are)")
    ours = [] if args.sb3_only else [a for a in args.algos if not missing[a]]
    results: dict = {}

    def record(env: str, lib: str, algo: str, seed: int, fn, stock=None) -> None:
        try: r = fn()
        except Exception as e: r = {"error": f"{type(e).__name__}: {str(e).strip().splitlines()[-1][:300] if str(e).strip() else ''}"}
        results.setdefault((env, lib, algo), {})[seed] = r
        print(run_line(env, lib, algo, seed, r, stock), flush=True)

    stock = static_pct = None
    if "truck" in args.envs:
        hp = hyperparams("truck", "td3", args)
        stock = truck_eval(None)
        static_pct, static_src = best_static_saving_pct()
        print(f"\n== truck: {hp['steps']} steps, {hp['learning_starts']} random warm-up steps, gamma {hp['gamma']}, lr {hp['lr']}, "
              f"batch {hp['batch_size']}, net {hp['hidden']}, noise {hp['noise_sigma']} (not SAC), action encoding {hp['encoding']}, actions {hp['action_dims']}, "
              f"reward scale {hp['reward_scale']:g}, reward centring {'on (tspace)' if hp['reward_center'] else 'off'}; "
              f"held-out cycle: stock map "
              f"{stock['wh_per_km']:.2f} Wh/km, RMSE {stock['speed_rmse_kmh']:.2f} km/h; best static map saves {static_pct:.2f} % ({static_src})")
        for seed in args.seeds:
            for algo in args.algos:
                hp = hyperparams("truck", algo, args)
                if algo in ours: record("truck", "tspace", algo, seed, lambda: run_tspace("truck", algo, seed, hp, args.eval_episodes), stock)
                if sb3 and algo in TRUCK_SB3_ALGOS:
                    record("truck", "sb3", algo, seed, lambda: sb3_run({"what": "train", "env": "truck", "algo": algo, "seed": seed, "hp": hp}), stock)
    pend_algos = [a for a in args.algos if a in PENDULUM]
    if "pendulum" in args.envs and pend_algos:
        print("\n== Pendulum-v1, RL Zoo hyperparameters: " + "; ".join(
            f"{NAMES[a]} {hyperparams('pendulum', a, args)}" for a in pend_algos))
        for seed in args.seeds:
            for algo in pend_algos:
                hp = hyperparams("pendulum", algo, args)
                if algo in ours: record("pendulum", "tspace", algo, seed, lambda: run_tspace("pendulum", algo, seed, hp, args.eval_episodes))
                if sb3: record("pendulum", "sb3", algo, seed, lambda: sb3_run({"what": "train", "env": "pendulum", "algo": algo, "seed": seed,
                                                                               "hp": hp, "eval_episodes": args.eval_episodes}))
    speed = {}
    if not args.no_speed and (ours or (sb3 and args.sb3_only)):
        print(f"\n== speed: {args.speed_updates} timed updates per library and algorithm on the truck's shapes (batch "
              f"{TRUCK['batch_size']}, net {TRUCK['hidden']}), one thread each; act latency on one observation")
        speed = speed_section(args, ours or args.algos, sb3 is not None, xla, tspace=bool(ours))

    print("\n## Results\n")
    savings, means = {}, {}
    if stock is not None and any(k[0] == "truck" for k in results):
        table, savings = truck_table(results, args.seeds, stock, static_pct)
        print(f"Truck (`tspace/TruckEnergy-v0`, held-out cycle, stock map {stock['wh_per_km']:.2f} Wh/km; best static map "
              f"{static_pct:.2f} %):\n\n{table}\n")
    if any(k[0] == "pendulum" for k in results):
        table, means = pendulum_table(results, args.seeds)
        print(f"Pendulum-v1 (RL Zoo hyperparameters), mean evaluation return over {args.eval_episodes} episodes:\n\n{table}\n")
    if speed: print(f"Speed (one thread each, truck shapes; act on one observation):\n\n{speed_table(speed)}\n")
    print("goals:")
    for line in goal_lines(savings, means, speed, args.seeds): print(f"  {line}")
    full = (not args.quick and (args.steps or TRUCK["steps"]) >= TRUCK["steps"] and len(args.seeds) >= 3 and set(args.algos) == set(ALGOS)
            and set(args.envs) == {"truck", "pendulum"} and not args.pendulum_steps)
    if not full: print("\nreduced budget: the issue's figures need `python bench/agents.py` (15000 truck steps, zoo Pendulum budget, "
                       "3 seeds, all algorithms)")
    print(f"\nwall time {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
