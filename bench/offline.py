"""Offline RL side by side: tspace TD3+BC and IQL against d3rlpy's TD3+BC and IQL, with tspace's plain offline DDPG below them.

Issue 18. Two datasets, the same data and the same number of updates for every method:

1. Pendulum-v1 "medium" (the shape of a D4RL medium set): a tspace SAC is trained online until it is half good, then
   drives `--transitions` steps with its stochastic policy; each method learns from those transitions only and is
   scored by its mean return over 10 noise-free evaluation episodes (higher is better).
2. The simulated truck, "medium" as well (`--sim-set medium`, the default): a tspace TD3 is trained online for
   `--sim-behaviour-steps` steps, then `tspace collect --behaviour checkpoint --noise 0.1` fills a pool with its drives of
   the training cycles. `--sim-set mixed`: random actions and the stock map instead, whose random drives cover the whole
   action box, so no action is outside the data. Each method learns from the pool's records and drives the held-out
   cycle without noise: Wh/km against the stock map's (lower is better). Rewards are scaled by `--sim-reward-scale` for
   every method alike (about -30 Wh a step otherwise).

Hyperparameters, the same on both sides (the papers' and d3rlpy's defaults): MLP (256, 256), batch 256, Adam 3e-4 for
actor and critic, gamma 0.99, tau 0.005; TD3+BC alpha 2.5, policy noise 0.2 clipped at 0.5, actor every 2nd update; IQL
expectile 0.7, temperature 3, weights clipped at 100; states standardised by the dataset's mean and std (tspace:
`fit_state_normalisation`, d3rlpy: `StandardObservationScaler`). Plain DDPG: the same networks and learning rates, its
own bounds scaling, no BC term.

Speed: updates per second of each method's training loop (sampling included), one thread each (TensorFlow intra/inter-op
threads 1 here; torch.set_num_threads(1) in d3rlpy's process). d3rlpy runs in a child process: torch and TensorFlow
never share one (see bench/common.py).

Goal: tspace's TD3+BC and IQL score at least d3rlpy's within the spread of the seeds, and plain offline DDPG below both.

Usage: python bench/offline.py [--quick] [--seeds 3] [--updates 20000] [--sim-updates 10000] [--only pendulum|sim] [--algos iql]
       [--sim-set medium|mixed] [--sim-behaviour-steps 5000]
"""
from __future__ import annotations
import argparse, json, os, subprocess, sys, tempfile, time
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import evaluate, markdown_table, one_thread_tf, run_worker   # noqa: E402

HERE = os.path.abspath(__file__)
HP = {"hidden_units": (256, 256), "batch_size": 256, "actor_lr": 3e-4, "critic_lr": 3e-4, "gamma": 0.99, "tau": 0.005,
      "bc_alpha": 2.5, "policy_noise": 0.2, "noise_clip": 0.5, "policy_delay": 2,
      "expectile": 0.7, "advantage_temperature": 3.0, "max_advantage_weight": 100.0}
TSPACE_ALGOS = ("td3bc", "iql", "ddpg")
D3RLPY_ALGOS = ("td3bc", "iql")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 seeds, 2000 updates, a small dataset: a smoke run of a few minutes")
    p.add_argument("--seeds", type=int, default=None, help="seeds per method (default 3, --quick 2)")
    p.add_argument("--updates", type=int, default=None, help="Pendulum: gradient updates per method and seed (default 20000, --quick 2000)")
    p.add_argument("--sim-updates", type=int, default=None, help="truck: updates per method and seed (default 10000, --quick 1000)")
    p.add_argument("--transitions", type=int, default=None, help="Pendulum dataset size (default 30000, --quick 10000)")
    p.add_argument("--behaviour-steps", type=int, default=None, help="online SAC steps that make the medium policy (default 5000, --quick 3000)")
    p.add_argument("--sim-episodes", type=int, default=None, help="truck drives collected with random actions (plus half as many stock; default 6, --quick 2)")
    p.add_argument("--sim-set", choices=("medium", "mixed"), default="medium",
                   help="truck dataset: drives of a briefly trained TD3 with noise 0.1 (medium), or random and stock drives (mixed)")
    p.add_argument("--sim-behaviour-steps", type=int, default=None, help="truck, medium set: online TD3 steps that make the behaviour policy (default 5000, --quick 1000)")
    p.add_argument("--sim-max-steps", type=int, default=600, help="truck: at most this many steps per collected drive")
    p.add_argument("--sim-reward-scale", type=float, default=0.01, help="truck: rewards times this for learning, every method alike")
    p.add_argument("--only", choices=("pendulum", "sim"), default=None, help="run one of the two datasets")
    p.add_argument("--no-d3rlpy", action="store_true", help="tspace only")
    p.add_argument("--algos", default=",".join(TSPACE_ALGOS), help="comma-separated subset of td3bc,iql,ddpg to run (default: all)")
    p.add_argument("--d3rlpy-worker", default=None, help=argparse.SUPPRESS)    # internal: one d3rlpy job (JSON), prints JSON
    a = p.parse_args(argv)
    a.algos = [x.strip() for x in a.algos.split(",") if x.strip()]
    if not a.algos or set(a.algos) - set(TSPACE_ALGOS): p.error(f"--algos {','.join(a.algos)!r}: expected a subset of {','.join(TSPACE_ALGOS)}")
    for k, full, quick in (("seeds", 3, 2), ("updates", 20000, 2000), ("sim_updates", 10000, 1000), ("transitions", 30000, 10000),
                           ("behaviour_steps", 5000, 3000), ("sim_episodes", 6, 2),
                           ("sim_behaviour_steps", 5000, 1000)):
        if getattr(a, k) is None: setattr(a, k, quick if a.quick else full)
    return a


def d3rlpy_available() -> str | None:
    "d3rlpy's and torch's versions, or None when d3rlpy is not installed (checked without importing torch here)."
    from importlib.metadata import version, PackageNotFoundError
    try: return f"d3rlpy {version('d3rlpy')} / torch {version('torch')}"
    except PackageNotFoundError: return None


# --- datasets (this process: TensorFlow) ---
def pendulum_dataset(path: str, behaviour_steps: int, transitions: int, seed: int = 0) -> dict:
    "Train a tspace SAC online for `behaviour_steps`, then record `transitions` steps of its stochastic policy to `path` (npz)."
    import gymnasium as gym
    from common import train_tspace
    from tspace.agent.sac import SAC
    env = gym.make("Pendulum-v1")
    sac = SAC.from_spaces(env.observation_space, env.action_space,
                          {"hidden_units": (64, 64), "batch_size": 128, "actor_lr": 1e-3, "critic_lr": 1e-3, "seed": seed})
    t0 = time.perf_counter()
    train_tspace(env, sac, behaviour_steps, 500, seed)
    behaviour_return = evaluate(lambda o: sac.act(o, explore=False), 99, 10)
    cols = {k: [] for k in ("s", "a", "r", "s2", "terminal", "end")}
    obs, _ = env.reset(seed=seed + 1)
    returns, ret = [], 0.0
    for _ in range(transitions):
        a = sac.act(obs)
        obs2, r, term, trunc, _ = env.step(a)
        for k, v in zip(cols, (obs, a, r, obs2, term, term or trunc)): cols[k].append(v)
        obs, ret = obs2, ret + r
        if term or trunc:
            obs, _ = env.reset()
            returns.append(ret)
            ret = 0.0
    cols["end"][-1] = True
    data = {k: np.asarray(v, np.float32 if k not in ("terminal", "end") else bool) for k, v in cols.items()}
    np.savez(path, **data)
    return {"behaviour_return_greedy": behaviour_return, "dataset_return": float(np.mean(returns)), "transitions": transitions,
            "episodes": len(returns), "seconds": time.perf_counter() - t0}


def medium_behaviour(ckpt: str, steps: int, score) -> dict:
    "Train a tspace TD3 online on the truck's training cycles for `steps` steps (bench/agents.py's truck settings, 40 % random warm-up), save it to `ckpt`; `score(agent)` of it."
    import agents
    from common import train_tspace
    hp = agents.hyperparams("truck", "td3", agents.parse_args([])) | {"steps": steps}
    env = agents.truck_env()
    agent = agents.tspace_agent("td3", hp, 0, env.observation_space, env.action_space)
    train_tspace(env, agent, steps, int(0.4 * steps), 0)
    agent.save(ckpt)
    return score(agent)


def sim_dataset(pool: str, path: str, episodes: int, max_steps: int, reward_scale: float, kind: str = "medium",
                behaviour_steps: int = 5000, score=None) -> dict:
    """`tspace collect` drives into `pool`: `medium`, `episodes * 1.5` drives of a TD3 trained `behaviour_steps` steps, with noise
    0.1; `mixed`, `episodes` random and half as many stock. Its records as arrays in `path` (npz, flat states and actions, scaled rewards)."""
    from tspace.data.core import episode_arrays
    from tspace.storage.pool.parquet import ParquetPool
    t0, info = time.perf_counter(), {}
    if kind == "medium":
        ckpt = os.path.join(os.path.dirname(path), "behaviour")
        info["behaviour_score"] = medium_behaviour(ckpt, behaviour_steps, score)
        drives = (("checkpoint", episodes + episodes // 2, 0),)
    else: drives = (("random", episodes, 0), ("stock", max(1, episodes // 2), 100))
    for behaviour, n, seed in drives:
        extra = ["--checkpoint", ckpt, "--noise", "0.1"] if behaviour == "checkpoint" else []
        out = subprocess.run(["tspace", "collect", "--out", pool, "--behaviour", behaviour, "--episodes", str(n),
                              "--max-steps", str(max_steps), "--seed", str(seed), *extra], capture_output=True, text=True)
        if out.returncode != 0: raise RuntimeError(f"tspace collect failed: {out.stderr[-2000:]}")
        print(f"  {out.stdout.strip()}")
    p = ParquetPool(pool)
    cols = {k: [] for k in ("s", "a", "r", "s2", "terminal", "end")}
    for ep in p.episodes().itertuples():
        arr = episode_arrays(p.query(vehicle=ep.vehicle, driver=ep.driver, episode_start=ep.episode_start))
        n = len(arr["r"])
        cols["s"].append(arr["s"].reshape(n, -1)); cols["s2"].append(arr["s2"].reshape(n, -1))
        cols["a"].append(arr["a"].reshape(n, -1)); cols["r"].append(arr["r"] * reward_scale)
        cols["terminal"].append(np.zeros(n, bool))           # a drive ends on a time limit: every method bootstraps through it (as train_offline)
        cols["end"].append(np.arange(n) == n - 1)            # ... and d3rlpy sees the end as a timeout
    data = {k: np.concatenate(v).astype(np.float32 if k not in ("terminal", "end") else bool) for k, v in cols.items()}
    np.savez(path, **data)
    return info | {"transitions": len(data["r"]), "episodes": int(data["end"].sum()), "seconds": time.perf_counter() - t0}


# --- tspace (this process) ---
def tspace_run(algo: str, data: dict, updates: int, seed: int, spec_args: tuple, score) -> dict:
    "Train tspace's `algo` from `data` for `updates` updates (timed), then `score(agent)`."
    from tspace.agent.dpg import make_agent
    from tspace.agent.spec import AgentSpec
    hp = {k: v for k, v in HP.items() if k in ("hidden_units", "batch_size", "actor_lr", "critic_lr", "gamma", "tau")
          or (algo == "td3bc" and k in ("bc_alpha", "policy_noise", "noise_clip", "policy_delay"))
          or (algo == "iql" and k in ("expectile", "advantage_temperature", "max_advantage_weight"))}
    agent = make_agent(AgentSpec(*spec_args), {"kind": algo, "seed": seed, "buffer_size": len(data["r"]), **hp})
    agent.observe({k: data[k] for k in ("s", "a", "r", "s2", "terminal")})
    if hasattr(agent, "fit_state_normalisation"): agent.fit_state_normalisation()
    t0 = time.perf_counter()
    for _ in range(updates): agent.learn()
    seconds = time.perf_counter() - t0
    return {"score": score(agent), "updates_s": updates / seconds}


# --- d3rlpy (a child process: torch) ---
def d3rlpy_job(job: dict) -> dict:
    "Train d3rlpy's `algo` on the npz dataset for `updates` updates (timed), then score it on Pendulum or the held-out cycle."
    import torch, d3rlpy
    from d3rlpy.dataset import MDPDataset
    from d3rlpy.logging import NoopAdapterFactory
    from d3rlpy.preprocessing import MinMaxActionScaler, StandardObservationScaler
    torch.set_num_threads(1)
    d3rlpy.seed(job["seed"])
    z = np.load(job["data"])
    timeouts = z["end"] & ~z["terminal"]
    dataset = MDPDataset(z["s"], z["a"], z["r"], z["terminal"].astype(np.float32), timeouts=timeouts.astype(np.float32))
    low, high = np.asarray(job["action_low"], np.float32), np.asarray(job["action_high"], np.float32)
    common = dict(batch_size=HP["batch_size"], gamma=HP["gamma"], tau=HP["tau"], actor_learning_rate=HP["actor_lr"],
                  critic_learning_rate=HP["critic_lr"], observation_scaler=StandardObservationScaler(),
                  action_scaler=MinMaxActionScaler(minimum=low, maximum=high))
    if job["algo"] == "td3bc":
        cfg = d3rlpy.algos.TD3PlusBCConfig(alpha=HP["bc_alpha"], target_smoothing_sigma=HP["policy_noise"],
                                           target_smoothing_clip=HP["noise_clip"], update_actor_interval=HP["policy_delay"], **common)
    else:
        cfg = d3rlpy.algos.IQLConfig(expectile=HP["expectile"], weight_temp=HP["advantage_temperature"],
                                     max_weight=HP["max_advantage_weight"], **common)
    algo = cfg.create(device="cpu:0")
    algo.build_with_dataset(dataset)
    t0 = time.perf_counter()
    algo.fit(dataset, n_steps=job["updates"], n_steps_per_epoch=job["updates"], show_progress=False,
             logger_adapter=NoopAdapterFactory(), save_interval=10**9)
    seconds = time.perf_counter() - t0
    if job["env"] == "pendulum":
        score = evaluate(lambda o: algo.predict(np.asarray(o, np.float32)[None])[0], job["seed"], 10)
    else:
        from tspace.config.run import RunConfig
        from tspace.loop.offline import heldout_evaluator
        cfg_run = RunConfig()
        ev = heldout_evaluator(cfg_run.vehicle, cfg_run.driver.behaviour, cfg_run.reward.speed_penalty)
        class Policy:
            def act(self, obs, explore=False):
                return algo.predict(np.asarray(obs, np.float32).reshape(1, -1))[0].reshape(cfg_run.vehicle.action_spec().shape)
        score = ev(Policy())
    return {"score": score, "updates_s": job["updates"] / seconds}


def d3rlpy_run(algo: str, env: str, data_path: str, updates: int, seed: int, low, high) -> dict:
    job = {"algo": algo, "env": env, "data": data_path, "updates": updates, "seed": seed,
           "action_low": np.asarray(low, float).ravel().tolist(), "action_high": np.asarray(high, float).ravel().tolist()}
    return run_worker(HERE, ["--d3rlpy-worker", json.dumps(job)])


# --- the two sections ---
def fmt_seeds(vals, f="{:.1f}") -> str: return " / ".join(f.format(v) for v in vals)


def section(title: str, runs: dict, score_key, fmt: str, higher_better: bool, unit: str) -> list[str]:
    "Print the table of `runs` {method: [result per seed]} and the goal lines; returns the goal lines."
    rows, means = [], {}
    for name, res in runs.items():
        vals = [score_key(r) for r in res]
        means[name] = (float(np.mean(vals)), float(np.std(vals)))
        rows.append([name, fmt_seeds(vals, fmt), f"{fmt.format(means[name][0])} ± {fmt.format(means[name][1])}",
                     f"{np.mean([r['updates_s'] for r in res]):.0f}"])
    print(f"\n### {title}\n")
    print(markdown_table(["method", f"{unit} per seed", "mean ± std", "updates/s"], rows))
    lines = []
    for algo in ("TD3+BC", "IQL"):
        t, d = means.get(f"tspace {algo}"), means.get(f"d3rlpy {algo}")
        if t is None or d is None: continue
        spread = max(t[1], d[1])
        ok = (t[0] >= d[0] - spread) if higher_better else (t[0] <= d[0] + spread)
        lines.append(f"{title}: tspace {algo} {fmt.format(t[0])} vs d3rlpy {fmt.format(d[0])} (spread {fmt.format(spread)}): "
                     f"{'MET' if ok else 'NOT MET'}")
        ts, ds = np.mean([r["updates_s"] for r in runs[f"tspace {algo}"]]), np.mean([r["updates_s"] for r in runs[f"d3rlpy {algo}"]])
        lines.append(f"{title}: {algo} updates/s tspace/d3rlpy = {ts / ds:.2f}x")
    ddpg = means.get("tspace DDPG (plain)")
    if ddpg is not None:
        others = [m[0] for n, m in means.items() if n != "tspace DDPG (plain)"]
        below = all(ddpg[0] < o for o in others) if higher_better else all(ddpg[0] > o for o in others)
        lines.append(f"{title}: plain offline DDPG {fmt.format(ddpg[0])} below every offline algorithm: {'YES' if below else 'NO'}")
    return lines


def run_pendulum(a, tmp: str, with_d3: bool) -> list[str]:
    import gymnasium as gym
    env = gym.make("Pendulum-v1")
    path = os.path.join(tmp, "pendulum_medium.npz")
    info = pendulum_dataset(path, a.behaviour_steps, a.transitions)
    print(f"Pendulum medium dataset: {info['transitions']} transitions in {info['episodes']} episodes, mean return "
          f"{info['dataset_return']:.1f} (behaviour policy without noise: {info['behaviour_return_greedy']:.1f}), {info['seconds']:.0f} s")
    data = dict(np.load(path))
    spec = (env.observation_space.shape, env.action_space.shape, env.observation_space.low, env.observation_space.high,
            env.action_space.low, env.action_space.high)
    runs = {}
    for seed in range(a.seeds):
        score = lambda ag, seed=seed: evaluate(lambda o: ag.act(o, explore=False), seed, 10)
        for algo, name in (("td3bc", "tspace TD3+BC"), ("iql", "tspace IQL"), ("ddpg", "tspace DDPG (plain)")):
            if algo not in a.algos: continue
            runs.setdefault(name, []).append(tspace_run(algo, data, a.updates, seed, spec, score))
            print(f"  seed {seed} {name}: return {runs[name][-1]['score']:.1f}, {runs[name][-1]['updates_s']:.0f} updates/s", flush=True)
        if with_d3:
            for algo, name in (("td3bc", "d3rlpy TD3+BC"), ("iql", "d3rlpy IQL")):
                if algo not in a.algos: continue
                runs.setdefault(name, []).append(d3rlpy_run(algo, "pendulum", path, a.updates, seed, env.action_space.low, env.action_space.high))
                print(f"  seed {seed} {name}: return {runs[name][-1]['score']:.1f}, {runs[name][-1]['updates_s']:.0f} updates/s", flush=True)
    order = [n for n in ("tspace TD3+BC", "d3rlpy TD3+BC", "tspace IQL", "d3rlpy IQL", "tspace DDPG (plain)") if n in runs]
    return section(f"Pendulum-v1 medium ({a.updates} updates, {a.seeds} seeds)", {n: runs[n] for n in order},
                   lambda r: r["score"], "{:.1f}", True, "return")


def run_sim(a, tmp: str, with_d3: bool) -> list[str]:
    from tspace.config.run import RunConfig
    from tspace.agent.spec import AgentSpec
    from tspace.loop.offline import heldout_evaluator
    path, pool = os.path.join(tmp, "sim.npz"), os.path.join(tmp, "pool")
    cfg = RunConfig()
    meta = cfg.observation_meta()
    ms = AgentSpec.from_meta(meta)
    spec = ((ms.state_size,), (ms.action_size,), ms.state_low.ravel(), ms.state_high.ravel(), ms.action_low.ravel(), ms.action_high.ravel())
    ev = heldout_evaluator(cfg.vehicle, cfg.driver.behaviour, cfg.reward.speed_penalty)
    info = sim_dataset(pool, path, a.sim_episodes, a.sim_max_steps, a.sim_reward_scale, a.sim_set, a.sim_behaviour_steps, ev)
    if "behaviour_score" in info:
        b = info["behaviour_score"]
        print(f"truck behaviour policy: TD3 trained online {a.sim_behaviour_steps} steps, on the held-out cycle without noise "
              f"{b['wh_per_km']:.2f} Wh/km ({b['saving_pct']:+.2f} %), speed RMSE {b['speed_rmse_kmh']:.2f} km/h")
    print(f"truck dataset ({a.sim_set}, tspace collect): {info['transitions']} transitions in {info['episodes']} episodes, {info['seconds']:.0f} s")
    data = dict(np.load(path))
    class Shaped:                      # the agents learn on flat vectors (as d3rlpy's); the truck wants (rows, columns)
        def __init__(self, ag): self.ag = ag
        def act(self, obs, explore=False): return self.ag.act(np.asarray(obs).reshape(-1), explore=False).reshape(meta.action.shape)
    runs, stock = {}, None
    for seed in range(a.seeds):
        for algo, name in (("td3bc", "tspace TD3+BC"), ("iql", "tspace IQL"), ("ddpg", "tspace DDPG (plain)")):
            if algo not in a.algos: continue
            runs.setdefault(name, []).append(tspace_run(algo, data, a.sim_updates, seed, spec, lambda ag: ev(Shaped(ag))))
            r = runs[name][-1]
            stock = r["score"]["stock_wh_per_km"]
            print(f"  seed {seed} {name}: {r['score']['wh_per_km']:.2f} Wh/km ({r['score']['saving_pct']:+.2f} %), "
                  f"{r['updates_s']:.0f} updates/s", flush=True)
        if with_d3:
            for algo, name in (("td3bc", "d3rlpy TD3+BC"), ("iql", "d3rlpy IQL")):
                if algo not in a.algos: continue
                runs.setdefault(name, []).append(d3rlpy_run(algo, "sim", path, a.sim_updates, seed, spec[4], spec[5]))
                r = runs[name][-1]
                print(f"  seed {seed} {name}: {r['score']['wh_per_km']:.2f} Wh/km ({r['score']['saving_pct']:+.2f} %), "
                      f"{r['updates_s']:.0f} updates/s", flush=True)
    order = [n for n in ("tspace TD3+BC", "d3rlpy TD3+BC", "tspace IQL", "d3rlpy IQL", "tspace DDPG (plain)") if n in runs]
    lines = section(f"Truck {a.sim_set}, held-out cycle ({a.sim_updates} updates, {a.seeds} seeds; stock map {stock:.2f} Wh/km)",
                    {n: runs[n] for n in order}, lambda r: r["score"]["wh_per_km"], "{:.2f}", False, "Wh/km")
    return lines


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.d3rlpy_worker is not None:
        print(json.dumps(d3rlpy_job(json.loads(a.d3rlpy_worker))))
        return 0
    one_thread_tf()
    d3 = None if a.no_d3rlpy else d3rlpy_available()
    import tensorflow as tf, tspace
    print(f"# Offline RL: tspace {tspace.__version__} (TensorFlow {tf.__version__}) vs {d3 or 'no d3rlpy (not installed or --no-d3rlpy)'}")
    print(f"seeds {a.seeds}, Pendulum {a.updates} updates, truck {a.sim_updates} updates{' (--quick)' if a.quick else ''}; "
          f"one thread per library; timings on a shared machine are inflated")
    t0 = time.perf_counter()
    goals = []
    with tempfile.TemporaryDirectory() as tmp:
        if a.only in (None, "pendulum"): goals += run_pendulum(a, tmp, d3 is not None)
        if a.only in (None, "sim"): goals += run_sim(a, tmp, d3 is not None)
    print("\n### Goals\n")
    for g in goals: print(f"- {g}")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
