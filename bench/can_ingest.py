"""CAN ingest throughput: decoded CAN frames per second through KvaserCAN next to a raw python-can receive +
cantools decode loop, in the same process, on the same pre-filled virtual bus; and the frames lost.

Target (issue 4): KvaserCAN >= 0.8 x the raw loop, >= 40,000 frames/s, zero lost.
Run: .venv/bin/python bench/can_ingest.py [--samples 60000]
"""
import argparse, time, uuid
from tspace.conn.can import CanConfig, open_bus, load_dbc
from tspace.dataflow.kvaser import KvaserCAN
from tspace.sim.ecu import VirtualVCU

def fill(cfg, rx_bus, samples):
    "Publish `samples` simulated samples (2 CAN frames each) into the queue of `rx_bus`; returns the frame count."
    tx = open_bus(cfg)
    vcu = VirtualVCU(tx, cfg, cycle="udds", loop=True, start_time=1_700_000_000.0)
    for _ in range(samples // 1000): vcu.step(1000)
    tx.shutdown()
    return 2 * vcu.stats["samples"]

def raw_loop(samples):
    cfg = CanConfig(channel=f"bench-raw-{uuid.uuid4().hex[:6]}")
    rx = open_bus(cfg)
    n = fill(cfg, rx, samples)
    db = load_dbc(cfg.dbc_path())
    decode, recv = db.decode_message, rx.recv
    got, out = 0, []
    t0 = time.perf_counter()
    while True:
        m = recv(0.2)
        if m is None: break
        out.append((m.timestamp, decode(m.arbitration_id, m.data, decode_choices=False)))
        got += 1
    dt = time.perf_counter() - t0 - 0.2          # minus the final empty wait
    rx.shutdown()
    return n, got, dt

def kvaser(samples):
    cfg = CanConfig(channel=f"bench-kv-{uuid.uuid4().hex[:6]}", queue_frames=100_000, bus_timeout_s=30)
    rx = open_bus(cfg)
    n = fill(cfg, rx, samples)
    kv = KvaserCAN(cfg, 30, 20.0, bus=rx)
    t0 = time.perf_counter()
    kv.start()
    while kv.stats["decoded"] + kv.stats["undecodable"] + kv.stats["unknown_id"] < n and time.perf_counter() - t0 < 60:
        time.sleep(0.001)
    dt = time.perf_counter() - t0 - 0.05         # minus the reader's final empty 50 ms wait, after which it posts its last counts
    frames = 0
    while kv.get_frame(timeout=0.5) is not None: frames += 1
    kv.stop(); rx.shutdown()
    return n, kv.stats["decoded"], dt, frames, dict(kv.stats)

if __name__ == "__main__":
    ap = argparse.ArgumentParser(); ap.add_argument("--samples", type=int, default=60_000); a = ap.parse_args()
    n_r, got_r, dt_r = raw_loop(a.samples)
    n_k, got_k, dt_k, frames, stats = kvaser(a.samples)
    r_raw, r_kv = got_r / dt_r, got_k / dt_k
    print(f"CAN frames sent per run     : {n_r:,} (raw) / {n_k:,} (KvaserCAN), virtual bus, 2 DBC messages per 50 Hz sample")
    print(f"raw python-can + cantools   : {r_raw:,.0f} frames/s  ({got_r:,} in {dt_r:.3f} s, lost {n_r - got_r})")
    print(f"KvaserCAN (decode+assemble) : {r_kv:,.0f} frames/s  ({got_k:,} in {dt_k:.3f} s, lost {n_k - got_k}, "
          f"{frames} state frames of 30 @ 20 Hz, dropped {stats.get('dropped_frames', 0)})")
    print(f"ratio KvaserCAN / raw       : {r_kv / r_raw:.2f}   (target >= 0.80; >= 40,000 frames/s; 0 lost)")
