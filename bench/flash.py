"""Torque-map flashing latency and throughput, UDS and XCP on CAN side by side, against the time budget of one frame.

Issue 22. A tester (KvaserCAN, as a run uses it) and the simulated VCU (sim.ecu.VirtualVCU) on one in-process virtual
bus; the VCU's programming time is set to 0 so the figures are the protocol's own cost (the default VCU adds 20 ms of
programming time after each UDS write, which FlashPath's pacing already waits for).

- latency: one write of 4 rows x 17 columns with its read-back (`flash_rows`: UDS reads the whole 14 x 17 map back,
  XCP the 4 rows it wrote), median and p95 over `--writes` writes; goal: under 50 ms, i.e. <= 0.033 of the 1.5 s frame.
- rows/s: 4 x writes / wall time of all writes.
- first write: UDS's first write also opens the extended session and passes SecurityAccess (seed, key).
- baseline: UDS without session and security access (what tspace did before issue 22), measured in the same run,
  so the cost of the full sequence per write is the ratio full / bare.

The three paths are measured in `--rounds` alternating rounds (the machine is shared); the figures are the medians of
the rounds' figures.

Run: python bench/flash.py [--writes 200] [--rounds 3]
"""
import argparse, statistics, time, uuid
import numpy as np
from tspace.conn.can import CanConfig, open_bus
from tspace.dataflow.kvaser import KvaserCAN
from tspace.sim.ecu import VirtualVCU

FRAME_S = 1.5
GOAL_S = 0.050


def measure(flash: dict, tester_flash: dict, writes: int) -> dict:
    cfg = CanConfig(channel=f"bench-flash-{uuid.uuid4().hex[:6]}", bus_timeout_s=600, flash=flash)
    vbus = open_bus(cfg)
    vcu = VirtualVCU(vbus, cfg, write_time_s=0.0).start(publish=False)
    kv = KvaserCAN(cfg.model_copy(update={"flash": cfg.flash.model_copy(update=tester_flash)}), 30, 20.0).start()
    stock = vcu.sim.stock_map.table
    try:
        t0 = time.perf_counter()
        kv.flash_rows(0, np.maximum(stock[0:4] - 10.0, stock[0:4, :1]))
        first = time.perf_counter() - t0
        lat = []
        start = time.perf_counter()
        for i in range(writes):
            r = 1 + i % 10
            rows = np.maximum(stock[r:r + 4] - (10.0 + i % 50), stock[r:r + 4, :1])
            t0 = time.perf_counter()
            kv.flash_rows(r, rows)
            lat.append(time.perf_counter() - t0)
        wall = time.perf_counter() - start
    finally:
        kv.stop(); vcu.stop(); vbus.shutdown()
    lat.sort()
    return {"first_s": first, "median_s": statistics.median(lat), "p95_s": lat[int(0.95 * (len(lat) - 1))], "rows_per_s": 4 * writes / wall}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--writes", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    quiet = {"watchdog_s": 0}
    paths = {"uds bare (baseline)": {**quiet, "session": "default", "security_level": 0}, "uds session+security": quiet,
             "xcp": {**quiet, "calibration": "xcp"}}
    rounds = {name: [] for name in paths}
    for _ in range(a.rounds):
        for name, flash in paths.items(): rounds[name].append(measure(flash, {}, a.writes))
    runs = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in rounds.items()}
    print(f"one write = 4 rows x 17 columns + its read-back; {a.writes} writes x {a.rounds} rounds each; frame budget {FRAME_S} s, goal {GOAL_S * 1000:.0f} ms")
    print(f"{'path':<22}{'first ms':>10}{'median ms':>11}{'p95 ms':>9}{'rows/s':>9}{'of frame':>10}{'goal':>6}")
    for name, r in runs.items():
        print(f"{name:<22}{r['first_s'] * 1000:>10.1f}{r['median_s'] * 1000:>11.2f}{r['p95_s'] * 1000:>9.2f}{r['rows_per_s']:>9.0f}"
              f"{r['median_s'] / FRAME_S:>10.4f}{'ok' if r['p95_s'] < GOAL_S else 'MISS':>6}")
    base = runs["uds bare (baseline)"]["median_s"]
    for name in ("uds session+security", "xcp"):
        print(f"{name} / uds bare: {runs[name]['median_s'] / base:.2f} x per write")


if __name__ == "__main__":
    main()
