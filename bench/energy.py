"""Energy bench: train `tspace run` for a fixed budget, evaluate on the held-out cycle against the stock map, and
compare the agent's saving with the best static map found offline (full knowledge of the cycle).

    python bench/energy.py [--episodes 8] [--speedup 50] [--data DIR]

Prints: Wh/km of stock and agent on the held-out cycle, the saving, distance and speed-RMSE checks, the best static
map of a low-dimensional family (every row lowered by a fraction of the budget; or a band of `rows` consecutive speed
rows lowered by a fraction), and the agent's saving as a fraction of that best saving.
"""
import argparse, math, sys, tempfile, time
import numpy as np

def drive(cycle, table, seed, params, driver, stock):
    from tspace.data.torquemap import TorqueMap
    from tspace.sim.truck import TruckSim
    sim = TruckSim(cycle, params, driver, stock, sample_hz=50.0, seed=seed)
    sim.set_map(TorqueMap(table, stock.speed_kmh, stock.pedal))
    e = d = sq = 0.0; n = 0
    while not sim.done:
        ch = sim.run(max(1, min(500, int(math.ceil((sim.cycle.duration_s - sim.time_s) * sim.sample_hz - 1e-6)))))
        e += ch.energy_wh; d += ch.distance_m; sq += float(np.sum((ch.ref_kmh - ch.signals[:, 0]) ** 2)); n += len(ch.time_s)
    return {"wh_per_km": e / (d / 1000), "distance_km": d / 1000, "speed_rmse_kmh": math.sqrt(sq / n)}

def best_static_map(cycle, seed, cfg):
    "Search: all rows lowered by f*budget, or a band of `rows` rows starting at each row lowered by f*budget; feasible = distance within 2 %, RMSE within stock + 1 km/h."
    from tspace.data.torquemap import TorqueMap
    v = cfg.vehicle
    stock = TorqueMap.from_config(v.torque_map)
    base = np.asarray(stock.table); budget = v.action.budget_nm; k = v.action.rows
    ref = drive(cycle, base, seed, v.physics, cfg.driver.behaviour, stock)
    cands = [("all rows", f, 0, base.shape[0]) for f in (0.25, 0.5, 0.75, 1.0)]
    cands += [(f"rows {s}..{s + k - 1}", f, s, k) for s in range(base.shape[0] - k + 1) for f in (0.5, 1.0)]
    best = (0.0, "stock map", ref)
    for name, f, s, n in cands:
        t = base.copy(); t[s:s + n] = np.maximum(t[s:s + n] - f * budget, 0.0)
        r = drive(cycle, t, seed, v.physics, cfg.driver.behaviour, stock)
        ok = abs(r["distance_km"] / ref["distance_km"] - 1) <= 0.02 and r["speed_rmse_kmh"] <= ref["speed_rmse_kmh"] + 1.0
        saving = 100 * (1 - r["wh_per_km"] / ref["wh_per_km"])
        if ok and saving > best[0]: best = (saving, f"{name} lowered by {f * budget:g} Nm", r)
    return ref, best

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--episodes", type=int, default=8); ap.add_argument("--speedup", type=float, default=50.0)
    ap.add_argument("--data", default=None); ap.add_argument("--config", default=None)
    a = ap.parse_args()
    from tspace.config.run import load_config
    from tspace.sim.cycles import HELDOUT_CYCLE
    from tspace.avatar import Avatar
    cfg = load_config(a.config)
    data = a.data or tempfile.mkdtemp(prefix="tspace-energy-")
    t0, c0 = time.monotonic(), time.process_time()
    av = Avatar(cfg, episodes=a.episodes, data=data, speedup=a.speedup, plots=True, progress=True)
    code = av.run()
    wall, cpu = time.monotonic() - t0, time.process_time() - c0
    if code != 0: print(f"run failed with exit code {code}"); return code
    df = av.drives_frame().set_index("phase")
    st, ag = df.loc["eval stock"], df.loc["eval agent"]
    saving = 100 * (1 - ag.wh_per_km / st.wh_per_km)
    dist_ok = abs(ag.distance_km / st.distance_km - 1) <= 0.02
    rmse_ok = ag.speed_rmse_kmh <= st.speed_rmse_kmh + 1.0
    print(f"\n== held-out cycle {HELDOUT_CYCLE!r} after {a.episodes} training episodes ({wall:.0f} s wall, {cpu:.0f} s CPU of this process) ==")
    print(f"stock map : {st.wh_per_km:8.2f} Wh/km  RMSE {st.speed_rmse_kmh:.2f} km/h  {st.distance_km:.3f} km")
    print(f"agent     : {ag.wh_per_km:8.2f} Wh/km  RMSE {ag.speed_rmse_kmh:.2f} km/h  {ag.distance_km:.3f} km")
    print(f"saving    : {saving:+.2f} %  (target >= 5 %)   distance within 2 %: {dist_ok}   RMSE within 1 km/h of stock: {rmse_ok}")
    seed = cfg.seed + 10_000
    t1 = time.monotonic()
    ref, (best, name, r) = best_static_map(HELDOUT_CYCLE, seed, cfg)
    print(f"best static map (offline search, {time.monotonic() - t1:.0f} s): {name}: {r['wh_per_km']:.2f} Wh/km, saving {best:.2f} % "
          f"(stock reference {ref['wh_per_km']:.2f} Wh/km, same seed)")
    frac = saving / best if best > 0 else math.nan
    print(f"agent saving / best static saving = {frac:.2f}  (target >= 0.9)")
    print(f"run directory: {av.run_dir}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
