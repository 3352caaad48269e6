"""How fast the simulated truck runs: one hour of driving, CPU and wall time, simulated-to-wall ratio.

Target (issue 3): one simulated hour in under 10 s of CPU time, i.e. a ratio of at least 360.
The hour is the city, highway and heavy-duty truck cycles back to back, cut at 3600 s. It is run
twice side by side: the bare simulator (`TruckSim.run`) and the same hour through the Gymnasium
environment with 1.5 s steps (stock-map actions), which adds the per-step overhead an agent sees.

Usage: python bench/sim_speed.py [--hz 100]
"""
import argparse, sys, time
import numpy as np
from tspace.config.truck import TruckParams
from tspace.sim.cycles import Cycle, load_cycle
from tspace.sim.env import TruckEnergyEnv
from tspace.sim.truck import TruckSim

TARGET_CPU_S = 10.0
HOUR_S = 3600.0

def one_hour() -> Cycle:
    parts = [load_cycle(n) for n in ("udds", "hwfet", "hhddt_cruise")]
    t, v = [], []
    offset = 0.0
    for c in parts:
        t.append(c.time_s[:-1] + offset); v.append(c.speed_kmh[:-1]); offset += c.duration_s
    t, v = np.concatenate(t), np.concatenate(v)
    keep = t <= HOUR_S
    return Cycle("hour", t[keep], v[keep], np.zeros(keep.sum()))

def timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hz", type=float, default=100.0, help="internal integration rate, Hz")
    args = ap.parse_args(argv)
    cyc = one_hour()
    params = TruckParams(sim_hz=args.hz)

    def bare():
        sim = TruckSim(cyc, params=params, sample_hz=20.0)
        sim.run_cycle()
        return sim
    sim, wall, cpu = timed(bare)
    steps = round(sim.time_s * args.hz)

    def via_env():
        env = TruckEnergyEnv(cyc, params=params)
        env.reset(seed=0)
        stock = env.action_spec.stock_action
        done = False
        while not done: done = env.step(stock)[3]      # the cycle's end is a truncation
        return env
    env, wall_e, cpu_e = timed(via_env)

    L = sim.ledger
    print(f"simulated: {sim.time_s:.0f} s ({cyc.name}: UDDS + HWFET + HHDDT cruise), {L.distance_m / 1000:.1f} km, "
          f"{L.energy_wh / (L.distance_m / 1000):.0f} Wh/km, {steps} internal steps at {args.hz:g} Hz")
    print(f"TruckSim.run       : wall {wall:6.2f} s  cpu {cpu:6.2f} s  simulated/wall {sim.time_s / wall:7.0f}x  "
          f"{cpu / steps * 1e6:5.2f} us CPU per internal step")
    print(f"TruckEnergyEnv.step: wall {wall_e:6.2f} s  cpu {cpu_e:6.2f} s  simulated/wall {env.sim.time_s / wall_e:7.0f}x  "
          f"(env overhead x{cpu_e / cpu:.2f} of the bare simulator)")
    ok = cpu <= TARGET_CPU_S * sim.time_s / HOUR_S and cpu_e <= TARGET_CPU_S * env.sim.time_s / HOUR_S
    print(f"target: one simulated hour in < {TARGET_CPU_S:.0f} s CPU (simulated/CPU >= {HOUR_S / TARGET_CPU_S:.0f}x): "
          f"bare {sim.time_s / cpu:.0f}x, env {env.sim.time_s / cpu_e:.0f}x -> {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1

if __name__ == "__main__":
    sys.exit(main())
