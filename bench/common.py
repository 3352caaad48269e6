"""What the side-by-side benches (`ddpg_pendulum.py`, `agents.py`) share: one thread per library, the training loop of a
tspace agent on a Gymnasium env, Stable-Baselines3 in its own process with its update calls timed, evaluation on
Pendulum-v1, the latency of one action, and Markdown tables.

torch and TensorFlow each bundle LLVM and abort when loaded into one process: the bench's own process imports
TensorFlow (tspace) and never torch; SB3 runs in a child process started with `run_worker` (`sb3_available` checks
that SB3 is installed without importing torch).
"""
from __future__ import annotations
import json, os, subprocess, sys, tempfile, time
import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")      # TensorFlow's start-up chatter would bury the bench's lines


def env_list(name: str, default: str) -> list[int]:
    "Integers from environment variable `name` (spaces or commas), else from `default`."
    return [int(x) for x in os.environ.get(name, default).replace(",", " ").split()]


def one_thread_tf() -> None:
    "TensorFlow on one intra-op and one inter-op thread; call before TensorFlow runs its first op."
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def sb3_available() -> str | None:
    "Version string of SB3 and torch, or None when stable-baselines3 is not installed (checked without importing torch here)."
    from importlib.metadata import version, PackageNotFoundError
    try: return f"SB3 {version('stable-baselines3')} / torch {version('torch')}"
    except PackageNotFoundError: return None


def run_worker(script: str, args: list[str]) -> dict:
    "Run `python script *args` in a child process; its last stdout line is the JSON result."
    out = subprocess.run([sys.executable, script, *args], capture_output=True, text=True)
    if out.returncode != 0: raise RuntimeError(f"worker {' '.join(args)[:200]} failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def train_tspace(env, agent, steps: int, learning_starts: int, seed: int) -> dict:
    "Train `agent` on `env` for `steps` steps: uniformly random actions before `learning_starts`, then `act` with noise and one `learn()` per step, timed."
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    learn_s, updates, losses = 0.0, 0, []
    t_start = time.perf_counter()
    for t in range(steps):
        a = env.action_space.sample() if t < learning_starts else agent.act(obs)
        obs2, r, term, trunc, _ = env.step(a)
        agent.observe({"s": obs, "a": a, "r": r, "s2": obs2, "terminal": term})
        obs = obs2
        if term or trunc:
            obs, _ = env.reset()
            agent.reset()
        if t >= learning_starts:
            t0 = time.perf_counter()
            out = agent.learn()
            learn_s += time.perf_counter() - t0
            updates += 1
            losses.append(out["critic_loss"])
    return {"grad_steps_s": updates / learn_s if learn_s else float("nan"), "updates": updates,
            "wall_s": time.perf_counter() - t_start, "losses": losses}


def time_sb3_updates(model) -> dict:
    "Wrap `model.train` so that the time spent in it and the gradient steps it does add up in the returned dict (`s`, `n`)."
    timing = {"s": 0.0, "n": 0}
    train = model.train
    def timed_train(gradient_steps: int, batch_size: int = 100):
        t0 = time.perf_counter()
        train(gradient_steps=gradient_steps, batch_size=batch_size)
        timing["s"] += time.perf_counter() - t0
        timing["n"] += gradient_steps
    model.train = timed_train
    return timing


def train_sb3(model, steps: int) -> dict:
    "`model.learn(steps)` with its update calls timed: gradient steps per second in `train` only, like `train_tspace`."
    timing = time_sb3_updates(model)
    t_start = time.perf_counter()
    model.learn(total_timesteps=steps)
    return {"grad_steps_s": timing["n"] / timing["s"] if timing["s"] else float("nan"), "updates": timing["n"],
            "wall_s": time.perf_counter() - t_start}


def evaluate(policy, seed: int, episodes: int, env_id: str = "Pendulum-v1") -> float:
    "Mean return of `policy(obs) -> action` over `episodes` episodes of `env_id`, each reset with its own seed (10000 + 100*seed + i)."
    import gymnasium as gym
    env = gym.make(env_id)
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=10_000 + 100 * seed + i)
        done, total = False, 0.0
        while not done:
            obs, r, term, trunc, _ = env.step(policy(obs))
            total += r
            done = term or trunc
        returns.append(total)
    return float(np.mean(returns))


def call_latency(fn, n: int = 3000, warmup: int = 100) -> dict:
    "p50/p99 of `fn()` in microseconds over `n` calls."
    for _ in range(warmup): fn()
    t = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter_ns()
        fn()
        t[i] = time.perf_counter_ns() - t0
    return {"p50_us": float(np.percentile(t, 50)) / 1e3, "p99_us": float(np.percentile(t, 99)) / 1e3}


def interleaved_latency(fns: dict, n: int, blocks: int = 20, warmup: int = 200) -> dict:
    "p50/p99 (µs) of each callable in `fns` over `n` calls, made in `blocks` rounds that call each in turn: a busy spell of a shared machine hits every path alike."
    for f in fns.values():
        for _ in range(warmup): f()
    per = max(1, n // blocks)
    t = {k: np.empty(per * blocks) for k in fns}
    clock = time.perf_counter_ns
    for b in range(blocks):
        for k, f in fns.items():
            out = t[k]
            for i in range(b * per, (b + 1) * per):
                t0 = clock(); f(); out[i] = clock() - t0
    return {k: {"p50_us": float(np.percentile(v, 50)) / 1e3, "p99_us": float(np.percentile(v, 99)) / 1e3} for k, v in t.items()}


def latency_report(agent, n: int = 20_000) -> dict:
    """`act` p50/p99 on one observation (NumPy fast path), the actor's matrix products alone and the TFLite interpreter (float32 and
    int8, with how far int8 moves the actions), timed interleaved; then `act` with noise and the compiled actor (`predict`, a tf.function)."""
    from tspace.agent.dpg import act_latency, tflite_runner
    spec, g = agent.spec, np.random.default_rng(0)            # observations inside the bounds
    lo = np.where(np.isfinite(spec.state_low), spec.state_low, -1.0)
    hi = np.where(np.isfinite(spec.state_high), spec.state_high, 1.0)
    xs = (lo + (hi - lo) * g.random((256, *spec.state_shape))).astype(np.float32)
    obs, flat = xs[0], xs[:1].reshape(1, -1)
    paths = {"act": lambda: agent.act(obs, explore=False)}
    if hasattr(agent, "numpy_actor"):         # the floor of any NumPy path: the actor's matrix products alone, into ready buffers
        Ws = [W for W, _ in agent.numpy_actor().layers]
        bufs, x0 = [np.empty(W.shape[1], np.float32) for W in Ws], np.zeros(Ws[0].shape[0], np.float32)
        def products():
            h = x0
            for W, o in zip(Ws, bufs): h = np.matmul(h, W, out=o)
        paths["products"] = products
    with tempfile.TemporaryDirectory() as d:
        run = tflite_runner(agent.export_tflite(os.path.join(d, "actor.tflite")))
        run8 = tflite_runner(agent.export_tflite(os.path.join(d, "actor_int8.tflite"), quantize="int8"))
        (name,) = run.interpreter.get_signature_list()["serving_default"]["inputs"]
        paths["tflite"] = lambda: run(**{name: flat})
        paths["tflite_int8"] = lambda: run8(**{name: flat})
        out = interleaved_latency(paths, n)
        a32, a8 = (next(iter(r(**{name: xs.reshape(256, -1)}).values())) for r in (run, run8))   # how far int8 moves the actions
        out["tflite_int8"].update(max_err=float(np.abs(a8 - a32).max()), mean_err=float(np.abs(a8 - a32).mean()),
                                  mean_abs_action=float(np.abs(a32).mean()))
    out["act_explore"] = act_latency(agent, n=n, explore=True)
    out["tf_function"] = call_latency(lambda: agent.predict(flat.reshape(1, *spec.state_shape)))
    return out


def spread_actor(agent, seed: int = 0) -> None:
    "Give `agent`'s actor kernels of scale 1.5/sqrt(fan_in): its actions then spread over (-1, 1) as a trained actor's do (an untrained one's are near 0)."
    g = np.random.default_rng(seed)
    for w in agent.actor.weights:
        if len(w.shape) == 2: w.assign((1.5 * g.normal(size=w.shape) / np.sqrt(w.shape[0])).astype(np.float32))
    agent._publish()                       # `act`'s NumPy copy of the weights


def markdown_table(header: list[str], rows: list[list]) -> str:
    "A Markdown table (GitHub flavour) of `rows` under `header`; cells are printed with `str`."
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)
