"""Energy bench: the agent of `tspace run` against an oracle, on the held-out cycle, for 3 seeds and both driver scenarios.

    python bench/energy.py [--quick] [--scenario cycle|following|both] [--seeds 3] [--episodes N] [--agent ddpg|td3]
                           [--oracle-evals 200] [--speedup 50] [--data DIR] [--config FILE] [--oracle-only]
                           [--no-training-static] [--training-static-evals N]

For each scenario and seed (`cfg.seed` = 0, 1, ...; `cfg.driver.behaviour.scenario` as `tspace run --scenario` sets it):
1. `tspace run` (the `Avatar`) trains for a fixed budget of episodes and drives the held-out cycle with the stock map
   ("eval stock") and with the agent ("eval agent", no noise), same seed, through the CAN path.
2. The oracle: with full knowledge of the held-out cycle, the lowest-energy static map found by a black-box search
   (CMA-ES, a fixed number of drives) over the whole safe map, warm-started from the best of a few static families
   (all rows, or a band of rows, lowered by a fraction of the budget on a coarse grid), whose fraction is first bisected
   towards the next grid point that breaks a limit (8 drives per family: a deeper cut saves more until a limit stops it).
   Every point it tries is a safe map: the search variable `z` in [-1, 0] is a change of every cell the held-out cycle can
   reach, in units of the budget, and the map driven is `ActionSpec.project(stock, stock + budget * z)` -- the same
   projection the flash path applies to the agent's proposals (monotone in pedal, stock at zero pedal unless
   `coast_regen_nm`, within the budget, only lower). A map counts only within the agent's limits: cycle scenario:
   distance within 2 % of stock and speed RMSE within stock + 1 km/h; following scenario: `FollowingReport.problems`
   (no collision, the gap bound, the same distance: final gap at the standstill distance).
   The oracle drives the same simulator as the eval drives, in-process (`MeteredTruckSim`: same parameters, driver,
   stock map, sample rate and seed); its stock drive is checked against the Avatar's stock reference.
3. The training-cycle static map (`--no-training-static` leaves it out): the best map of the same static families on the
   training cycles (one drive each, limits kept on each), with `--training-static-evals N` then refined by a CMA-ES over
   each speed row's depth, driven on the held-out eval drive. It is what one map chosen
   from the training data alone saves on the held-out cycle: where it is far below the oracle, the oracle's saving rests
   on knowing the held-out cycle, which no learner has.
4. A table per scenario: each seed, the mean and the spread; the agent's saving as a fraction of the oracle's.
"""
import argparse, math, sys, tempfile, time
import numpy as np
import pandas as pd

LIMITS_CYCLE = {"distance_pct": 2.0, "rmse_over_stock_kmh": 1.0}
"The cycle scenario's limits (the training loop's `policy_score` uses the same): distance within 2 % of stock, RMSE within stock + 1 km/h."

def trip_time_s(trace) -> float:
    "Time (s) of the last trace sample at which the truck moves (> 0.5 km/h): when it arrives."
    t = np.asarray([r[0] for r in trace], float)
    v = np.asarray([r[1] for r in trace], float)
    moving = np.flatnonzero(v > 0.5)
    return float(t[moving[-1]]) if moving.size else math.nan

def drive_metrics(summary: dict, trace, following) -> dict:
    "A drive's numbers for the table: Wh/km, distance, speed RMSE, trip time, and the following scenario's limits (or NaN)."
    out = {k: float(summary[k]) for k in ("wh_per_km", "distance_km", "speed_rmse_kmh")}
    out["trip_s"] = trip_time_s(trace)
    f = following.as_dict() if following is not None else dict.fromkeys(("min_gap_m", "max_gap_excess_s", "final_gap_m"), math.nan)
    return {**out, **f}

def limit_problems(r: dict, stock: dict, following_params, scenario: str) -> list[str]:
    "The limits drive `r` breaks against the `stock` drive, in words; [] within all limits."
    from tspace.sim.traffic import FollowingReport
    if scenario == "following":
        return FollowingReport(r["min_gap_m"], r["max_gap_excess_s"], r["final_gap_m"]).problems(following_params)
    out = []
    d = 100 * abs(r["distance_km"] / stock["distance_km"] - 1)
    if d > LIMITS_CYCLE["distance_pct"]: out.append(f"distance {d:.2f} % from stock")
    if r["speed_rmse_kmh"] > stock["speed_rmse_kmh"] + LIMITS_CYCLE["rmse_over_stock_kmh"]:
        out.append(f"speed RMSE {r['speed_rmse_kmh']:.2f} km/h > stock {stock['speed_rmse_kmh']:.2f} + 1")
    return out

def violation(r: dict, stock: dict, fp, scenario: str) -> float:
    "How far drive `r` is outside the limits (0 inside): a sum of the excesses, each in units of its limit's scale."
    if scenario == "following":
        return (max(0.0, fp.min_gap_m - 0.5 - r["min_gap_m"]) + max(0.0, r["max_gap_excess_s"] - fp.max_gap_excess_s)
                + max(0.0, abs(r["final_gap_m"] - fp.min_gap_m) - fp.final_gap_tol_m))
    d = 100 * abs(r["distance_km"] / stock["distance_km"] - 1)
    return (max(0.0, d - LIMITS_CYCLE["distance_pct"])
            + max(0.0, r["speed_rmse_kmh"] - stock["speed_rmse_kmh"] - LIMITS_CYCLE["rmse_over_stock_kmh"]))

class MapDrive:
    "Drives of one cycle with a whole static map, in-process, with the simulator, driver, stock map, sample rate and seed of a vehicle's drives."
    def __init__(self, vehicle, spec, cycle: str, seed: int):
        from tspace.dataflow.vehicle import MeteredTruckSim
        self.stock, self.spec, self.seed = vehicle.stock, spec, int(seed)
        self.base = np.asarray(self.stock.table, float)
        self.sim = MeteredTruckSim(cycle, vehicle.params, vehicle.driver, self.stock, sample_hz=vehicle.sample_hz, seed=self.seed)
        self.drives = 0

    def safe(self, table) -> np.ndarray:
        "The safe map nearest above `table` (`ActionSpec.project`), checked with `map_problems`."
        t = self.spec.project(self.base, table)
        bad = self.spec.map_problems(self.base, t)
        if bad: raise AssertionError(f"projection left an unsafe map: {bad}")
        return t

    def __call__(self, table) -> dict:
        "Drive the cycle with map `table` (made safe first): `drive_metrics`."
        from tspace.data.torquemap import TorqueMap
        sim = self.sim
        sim.reset(seed=self.seed)
        sim.set_map(TorqueMap(self.safe(table), self.stock.speed_kmh, self.stock.pedal))
        sim.run_cycle()
        self.drives += 1
        return drive_metrics(sim.drive_summary(), sim.trace, sim.following_report())

def static_families(base: np.ndarray, budget: float, k: int):
    "(name, grid, fraction -> table) of the static families: all rows lowered by a fraction of the budget, or a band of `k` rows lowered (before projection)."
    yield "all rows", (0.25, 0.5, 0.75, 1.0), lambda f: base - f * budget
    for s in range(base.shape[0] - k + 1):
        def band(f, s=s):
            t = base.copy()
            t[s:s + k] -= f * budget
            return t
        yield f"rows {s}..{s + k - 1}", (0.5, 1.0), band

def family_name(family: str, f: float, budget: float) -> str: return f"{family} lowered by {f * budget:.4g} Nm"

def reachable_rows(stock, cycle: str) -> int:
    "Speed rows of the map the cycle's speeds can reach by interpolation (rows up to the first breakpoint at or above its top speed)."
    from tspace.sim.cycles import as_cycle
    top = float(as_cycle(cycle).speed_kmh.max())
    return int(min(len(stock.speed_kmh), np.searchsorted(stock.speed_kmh, top) + 1))

def best_static(drives: list, scenario: str, fp, refine: int = 8) -> dict:
    "The best safe static map of the static families over `drives` (each a `MapDrive`, all with the same stock map), each family's depth bisected towards the limit that stops it (`refine` drives each); Wh/km of all drives together, limits kept on every drive."
    base, spec = drives[0].base, drives[0].spec
    stock = [d(base) for d in drives]
    stock_wh = sum(r["wh_per_km"] * r["distance_km"] for r in stock) / sum(r["distance_km"] for r in stock)
    def judge(table) -> tuple[float, list, bool]:
        rs = [d(table) for d in drives]
        ok = not any(limit_problems(r, s, fp, scenario) for r, s in zip(rs, stock))
        wh = sum(r["wh_per_km"] * r["distance_km"] for r in rs) / sum(r["distance_km"] for r in rs)
        return (wh if ok else stock_wh * (1.01 + sum(violation(r, s, fp, scenario) for r, s in zip(rs, stock)))), rs, ok
    best = {"name": "stock map", "table": base, "rs": stock, "wh_per_km": stock_wh}
    def keep(name, table, f, rs, ok):
        if ok and f < best["wh_per_km"]: best.update(name=name, table=drives[0].safe(table), rs=rs, wh_per_km=f)
    brackets = []                                       # (family, fraction -> table, largest fraction within the limits, the next one outside)
    for fam, grid, table in static_families(base, spec.budget_nm, spec.rows):
        lo = 0.0                                        # the stock map is within the limits
        for f in grid:
            wh, rs, ok = judge(table(f))
            keep(family_name(fam, f, spec.budget_nm), table(f), wh, rs, ok)
            if ok: lo = f
            else: brackets.append((fam, table, lo, f)); break
    for fam, table, lo, hi in brackets:                 # a deeper cut saves more until a limit stops it: bisect to that depth
        for _ in range(refine):
            f = (lo + hi) / 2
            wh, rs, ok = judge(table(f))
            keep(family_name(fam, f, spec.budget_nm), table(f), wh, rs, ok)
            lo, hi = (f, hi) if ok else (lo, f)
    return {**best, "stock": stock, "stock_wh_per_km": stock_wh, "judge": judge,
            "saving_pct": 100 * (1 - best["wh_per_km"] / stock_wh)}

def oracle(drive: MapDrive, scenario: str, fp, evals: int, seed: int = 1, refine: int = 8, log=print) -> dict:
    "The best safe static map found for `drive`'s cycle within the limits: `best_static` of that one drive, then CMA-ES over every reachable cell."
    import cma
    t0, p0 = time.monotonic(), time.process_time()
    base, spec = drive.base, drive.spec
    fam = best_static([drive], scenario, fp, refine)
    stock, judge_all = fam["stock"][0], fam["judge"]
    best = {"name": fam["name"], "table": fam["table"], "r": fam["rs"][0]}
    def judge(table) -> tuple[float, dict, bool]:
        f, rs, ok = judge_all(table)
        return f, rs[0], ok
    def keep(name, table, r, ok):
        if ok and r["wh_per_km"] < best["r"]["wh_per_km"]: best.update(name=name, table=drive.safe(table), r=r)
    families = dict(best)
    n_rows = reachable_rows(drive.stock, drive.sim.cycle)
    col0 = 0 if spec.coast_regen_nm > 0 else 1          # zero pedal is stock unless coast regeneration is allowed
    cells = (slice(0, n_rows), slice(col0, base.shape[1]))
    def table_of(z) -> np.ndarray:
        t = base.copy()
        t[cells] = base[cells] + spec.budget_nm * np.asarray(z).reshape(n_rows, -1)
        return t
    z0 = np.clip((best["table"][cells] - base[cells]) / spec.budget_nm, -1.0, 0.0).ravel()
    n_static = drive.drives
    es = cma.CMAEvolutionStrategy(z0, 0.15, {"bounds": [-1.0, 0.0], "maxfevals": max(0, evals), "seed": seed, "verbose": -9})
    while evals > 0 and not es.stop():
        zs = es.ask()
        fs = []
        for z in zs:
            f, r, ok = judge(table_of(z))
            keep("CMA-ES", table_of(z), r, ok)
            fs.append(f)
        es.tell(zs, fs)
    saving = 100 * (1 - best["r"]["wh_per_km"] / stock["wh_per_km"])
    fam_saving = 100 * (1 - families["r"]["wh_per_km"] / stock["wh_per_km"])
    log(f"  oracle: {drive.drives} drives ({n_static} of the static families and their bisection, {drive.drives - n_static} CMA-ES over {z0.size} cells "
        f"= {n_rows} speed rows x {base.shape[1] - col0} pedal columns) in {time.monotonic() - t0:.0f} s wall, "
        f"{time.process_time() - p0:.0f} s CPU: best static family {families['name']!r} {fam_saving:+.2f} %, best found {saving:+.2f} % ({best['name']})")
    return {"stock": stock, "best": best["r"], "table": best["table"], "name": best["name"], "saving_pct": saving,
            "families_saving_pct": fam_saving, "families_name": families["name"], "drives": drive.drives,
            "wall_s": time.monotonic() - t0, "problems": spec.map_problems(base, best["table"])}

def training_static(vehicle, spec, scenario: str, fp, seed: int, held: MapDrive, refine: int = 6, row_evals: int = 0, log=print) -> dict:
    "The best map of the static families on the TRAINING cycles (one drive of each, seeds `seed`, `seed`+1, ...; limits kept on each), then, with `row_evals` > 0, a CMA-ES over each speed row's depth from there; the best map found is driven on the held-out eval drive `held`: what one map chosen from the training data alone saves there. A reference between the agent and the oracle, which knows the held-out cycle."
    import cma
    from tspace.sim.cycles import TRAIN_CYCLES
    t0 = time.monotonic()
    fam = best_static([MapDrive(vehicle, spec, c, seed + i) for i, c in enumerate(TRAIN_CYCLES)], scenario, fp, refine)
    best = {"name": fam["name"], "table": fam["table"], "wh": fam["wh_per_km"]}
    col0 = 0 if spec.coast_regen_nm > 0 else 1          # zero pedal is stock unless coast regeneration is allowed
    base = held.base
    def table_of(z) -> np.ndarray:
        t = base.copy()
        t[:, col0:] += spec.budget_nm * np.asarray(z)[:, None]
        return t
    z0 = np.clip(np.min(fam["table"][:, col0:] - base[:, col0:], axis=1) / spec.budget_nm, -1.0, 0.0)
    es = cma.CMAEvolutionStrategy(z0, 0.15, {"bounds": [-1.0, 0.0], "maxfevals": max(0, row_evals), "seed": seed + 1, "verbose": -9})
    while row_evals > 0 and not es.stop():
        zs = es.ask()
        fs = [fam["judge"](table_of(z)) for z in zs]
        for z, (wh, _, ok) in zip(zs, fs):
            if ok and wh < best["wh"]: best.update(name="rows lowered " + "/".join(f"{-d:.0f}" for d in spec.budget_nm * z) + " Nm", table=held.safe(table_of(z)), wh=wh)
        es.tell(zs, [f for f, _, _ in fs])
    train_saving = 100 * (1 - best["wh"] / fam["stock_wh_per_km"])
    stock, r = held(base), held(best["table"])
    problems = limit_problems(r, stock, fp, scenario)
    saving = 100 * (1 - r["wh_per_km"] / stock["wh_per_km"])
    log(f"  training-cycle static map: {best['name']!r} saves {train_saving:+.3f} % on {', '.join(TRAIN_CYCLES)} together, "
        f"{saving:+.3f} % on the held-out drive{'' if not problems else ' but breaks ' + '; '.join(problems)} ({time.monotonic() - t0:.0f} s)")
    return {"name": best["name"], "train_saving_pct": train_saving, "saving_pct": saving if not problems else math.nan, "problems": problems}

EVAL_SEED_OFFSET = 10_000
"The Avatar's final evaluation drives the held-out cycle with seed `cfg.seed + 10_000` (`Avatar._final_evaluation`)."

def saving_plot_with_oracle(av, oracle_pct: float):
    "The run's saving-per-drive plot with the oracle's line, as `plots/saving_oracle.png` of its run directory."
    from tspace.report import saving_figure
    fig = saving_figure(av.drives_frame(), reference={f"oracle on {av.eval_cycle} (best safe static map, full knowledge)": oracle_pct})
    out = av.run_dir / "plots" / "saving_oracle.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    return out

def train_and_evaluate(cfg, scenario: str, seed: int, a, log=print) -> dict:
    "One seed of one scenario: `tspace run` for `a.episodes` episodes, then the oracle on the same eval drive; one row of the table."
    from tspace.avatar import Avatar
    from tspace.sim.cycles import HELDOUT_CYCLE
    data = tempfile.mkdtemp(prefix=f"tspace-energy-{scenario}-{seed}-", dir=a.data)
    t0, c0 = time.monotonic(), time.process_time()
    av = Avatar(cfg, episodes=a.episodes, data=data, speedup=a.speedup, plots=True, progress=not a.quiet)
    code = av.run()
    train_wall, train_cpu = time.monotonic() - t0, time.process_time() - c0
    if code != 0: return {"scenario": scenario, "seed": seed, "failed": f"tspace run exit code {code} ({av.run_dir})"}
    df = av.drives_frame().set_index("phase")
    st, ag = df.loc["eval stock"], df.loc["eval agent"]
    fp = cfg.driver.behaviour.following
    agent = drive_metrics(ag, av.pipeline.traces["eval agent"], av.vehicle.sim.following_report())   # the VCU's truck after its last drive
    drive = MapDrive(av.vehicle, cfg.vehicle.action_spec(), av.eval_cycle, cfg.seed + EVAL_SEED_OFFSET)
    orc = oracle(drive, scenario, fp, a.oracle_evals, seed=seed + 1, log=log)
    learnable = training_static(av.vehicle, cfg.vehicle.action_spec(), scenario, fp, cfg.seed, drive, refine=2 if a.quick else 6, row_evals=a.training_static_evals, log=log) if a.training_static else None
    stock = orc["stock"]
    for what, v in (("eval stock (CAN path)", st.wh_per_km), ("stock reference of the eval agent row", ag.stock_wh_per_km)):
        if abs(v / stock["wh_per_km"] - 1) > 1e-3:
            log(f"  WARNING: {what} {v:.3f} Wh/km differs from the oracle's in-process stock drive {stock['wh_per_km']:.3f} Wh/km by more than 0.1 %")
    saving = 100 * (1 - agent["wh_per_km"] / stock["wh_per_km"])
    problems = limit_problems(agent, stock, fp, scenario)
    vcu = av.result["vehicle_stats"].get("vcu", {})
    flash = av.result["flash"]
    plot = saving_plot_with_oracle(av, orc["saving_pct"])
    row = {"scenario": scenario, "seed": seed, "stock Wh/km": stock["wh_per_km"], "agent Wh/km": agent["wh_per_km"],
           "saving %": saving, "oracle %": orc["saving_pct"], "static %": orc["families_saving_pct"],
           "agent/oracle": saving / orc["saving_pct"] if orc["saving_pct"] > 0 else math.nan,
           **({} if learnable is None else {"training-static %": learnable["saving_pct"], "training-static on training %": learnable["train_saving_pct"],
                                                "training-static map": learnable["name"]}),
           "km": agent["distance_km"], "stock km": stock["distance_km"], "trip s": agent["trip_s"], "stock trip s": stock["trip_s"]}
    if scenario == "following":
        row.update({"min gap m": agent["min_gap_m"], "gap excess s": agent["max_gap_excess_s"], "final gap m": agent["final_gap_m"],
                    "stock gap excess s": stock["max_gap_excess_s"]})
    else: row.update({"RMSE km/h": agent["speed_rmse_kmh"], "stock RMSE": stock["speed_rmse_kmh"]})
    row.update({"within limits": not problems, "flashed": flash["written"], "projected": flash["projected"],
                "refused": vcu.get("refused_unsafe", math.nan), "oracle s": orc["wall_s"], "train s": train_wall, "train CPU s": train_cpu,
                "problems": "; ".join(problems), "oracle map": orc["name"], "run_dir": str(av.run_dir), "plot": str(plot)})
    log(f"  seed {seed} {scenario}: agent {saving:+.2f} %, oracle {orc['saving_pct']:+.2f} %, within limits: {not problems} {problems or ''}"
        f" (training {train_wall:.0f} s wall, {train_cpu:.0f} s CPU of this process; run {av.run_dir})")
    return row

def seed_table(rows: list[dict]) -> str:
    "The rows of one scenario, then their mean and spread (std, min..max) of every numeric column."
    df = pd.DataFrame(rows).set_index("seed")
    num = df.select_dtypes("number").drop(columns=["oracle s", "train s", "train CPU s"], errors="ignore")
    stats = pd.DataFrame({"mean": num.mean(), "std": num.std(ddof=1) if len(num) > 1 else num.mean() * math.nan,
                          "min": num.min(), "max": num.max()}).T
    with pd.option_context("display.width", 250, "display.max_columns", 40, "display.float_format", "{:.3f}".format):
        return f"{num.to_string()}\n{stats.to_string()}"

def oracle_only(cfg, scenario: str, seed: int, a, log=print) -> dict:
    "The oracle of one seed and scenario without training: the eval drive of `tspace run` (`SimVehicle`, held-out cycle, eval seed), searched as in `train_and_evaluate`."
    import queue, uuid
    from tspace.conn.can import open_bus
    from tspace.dataflow.vehicle import SimVehicle
    from tspace.sim.cycles import HELDOUT_CYCLE
    v = cfg.vehicle
    can_cfg = v.can.model_copy(update={"interface": "virtual", "channel": f"tspace-oracle-{uuid.uuid4().hex[:10]}"})
    bus = open_bus(can_cfg)
    try:
        vehicle = SimVehicle(bus, can_cfg, v, cfg.driver.behaviour, queue.Queue(), math.inf)
        held = MapDrive(vehicle, v.action_spec(), HELDOUT_CYCLE, cfg.seed + EVAL_SEED_OFFSET)
        orc = oracle(held, scenario, cfg.driver.behaviour.following, a.oracle_evals, seed=seed + 1, log=log)
        learnable = training_static(vehicle, v.action_spec(), scenario, cfg.driver.behaviour.following, cfg.seed, held,
                                    refine=2 if a.quick else 6, row_evals=a.training_static_evals, log=log) \
            if a.training_static else None
    finally: bus.shutdown()
    return {"scenario": scenario, "seed": seed, "stock Wh/km": orc["stock"]["wh_per_km"], "oracle Wh/km": orc["best"]["wh_per_km"],
            "oracle %": orc["saving_pct"], "static %": orc["families_saving_pct"], "drives": orc["drives"], "oracle s": orc["wall_s"],
            "oracle map": orc["name"],
            **({} if learnable is None else {"training-static %": learnable["saving_pct"], "training-static on training %": learnable["train_saving_pct"],
                                              "training-static map": learnable["name"]})}

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 1 episode, 40 oracle drives")
    ap.add_argument("--scenario", choices=("cycle", "following", "both"), default="both")
    ap.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (cfg.seed)")
    ap.add_argument("--episodes", type=int, default=None, help="training episodes per seed, the fixed budget (default: the config's episodes)")
    ap.add_argument("--oracle-evals", type=int, default=200, help="drives of the oracle's CMA-ES (after the static families)")
    ap.add_argument("--agent", default=None, help="agent kind (default: the config's agent.kind)")
    ap.add_argument("--speedup", type=float, default=None, help="simulated s per wall s (default: the run's default)")
    ap.add_argument("--data", default=None, help="folder for the runs' pools (default: a temporary folder)")
    ap.add_argument("--config", default=None)
    ap.add_argument("--quiet", action="store_true", help="no per-drive progress lines")
    ap.add_argument("--oracle-only", action="store_true", help="no training: the oracle of each seed and scenario only")
    ap.add_argument("--no-training-static", dest="training_static", action="store_false",
                    help="leave out the training-cycle static map (the best static family found on the training cycles, driven on the held-out cycle)")
    ap.add_argument("--training-static-evals", type=int, default=0,
                    help="training-cycle static map: then a CMA-ES over each speed row's depth, this many searches (each drives every training cycle)")
    a = ap.parse_args(argv)
    if a.quick:
        a.seeds, a.episodes, a.oracle_evals = 1, 1, 20
        a.speedup = a.speedup or 150.0
    from tspace.cli.common import load_config_with
    from tspace.system.log import quiet_libraries
    from tspace.sim.cycles import HELDOUT_CYCLE
    quiet_libraries()
    scenarios = ("cycle", "following") if a.scenario == "both" else (a.scenario,)
    t0 = time.monotonic()
    tables = {}
    for scenario in scenarios:
        rows = []
        for seed in range(a.seeds):
            cfg = load_config_with(a.config, {"seed": seed, "driver.behaviour.scenario": scenario, "agent.kind": a.agent})
            a.episodes = a.episodes or cfg.episodes
            if a.oracle_only:
                print(f"\n== {scenario} scenario, seed {seed}: the oracle only, on {HELDOUT_CYCLE!r} ==", flush=True)
                rows.append(oracle_only(cfg, scenario, seed, a))
                continue
            print(f"\n== {scenario} scenario, seed {seed}: {cfg.agent.kind}, {a.episodes} training episodes, eval on {HELDOUT_CYCLE!r} ==", flush=True)
            rows.append(train_and_evaluate(cfg, scenario, seed, a))
        tables[scenario] = rows
    trained = "no training (--oracle-only)" if a.oracle_only else f"{a.episodes} training episodes per seed"
    print(f"\n== results on the held-out cycle {HELDOUT_CYCLE!r}: {trained}, oracle = static families + "
          f"{a.oracle_evals} CMA-ES drives; saving = 1 - Wh/km / stock Wh/km, same seed and scenario ==")
    failed = 0
    for scenario, rows in tables.items():
        ok = [r for r in rows if "failed" not in r]
        failed += len(rows) - len(ok)
        print(f"\n-- {scenario} scenario --")
        for r in rows:
            if "failed" in r: print(f"seed {r['seed']}: FAILED {r['failed']}")
        if ok:
            print(seed_table(ok))
            for r in ok:
                if r.get("problems"): print(f"seed {r['seed']}: agent outside the limits: {r['problems']}")
            print("oracle maps: " + ", ".join(f"seed {r['seed']}: {r['oracle map']}" for r in ok))
            if any("training-static map" in r for r in ok):
                print("training-cycle static maps: " + ", ".join(f"seed {r['seed']}: {r['training-static map']}" for r in ok))
            if not a.oracle_only: print("runs: " + ", ".join(r["run_dir"] for r in ok))
    print(f"\nbench wall time {time.monotonic() - t0:.0f} s, CPU of this process {time.process_time():.0f} s")
    return 1 if failed else 0

if __name__ == "__main__":
    sys.exit(main())
