"""Soak: `tspace run` against a simulated truck on a noisy bus and a noisy HMI for a long time; no bad input may stop it.

    python bench/soak.py [--minutes 30] [--can-rate 300] [--hmi-rate 20] [--episode-s 20]

`tspace sim` is the truck (a VCU on a host-local udp_multicast bus, hop limit 0); `tspace run` reads it as a real
truck (`vehicle.interface = "kvaser"`) and takes the driver's begin/end from a UDP HMI. Beside them this script is
  - the driver: begin, `--episode-s` of driving, end_valid, a short pause, again;
  - a CAN garbage generator (`--can-rate` messages/s): unknown ids, 29-bit ids equal to the DBC's, wrong DLC on the
    DBC's ids, random payloads on the DBC's ids (their rolling counters are wrong), error frames, and random bytes on
    the VCU's UDS response id;
  - an HMI garbage generator (`--hmi-rate` datagrams/s): random bytes, invalid UTF-8, 400-digit numbers, JSON nested
    30,000 deep, oversized datagrams, unknown statuses.
At the end the run gets SIGINT. Prints: exit code, worker failures, the counters of every kind of bad input from the
run's summary.json, records stored, and the RSS of `tspace run` at minute 5 (or at 1/6 of a shorter soak) and at
the end. Goal (issue 19): exit 0, 0 worker failures, RSS at the end within 10 % of minute 5.
"""
import argparse, json, os, random, signal, socket, subprocess, sys, tempfile, threading, time
from pathlib import Path

TSPACE = ["tspace"]
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))    # the tests' helpers for a truck on a host-local bus
from cli_helpers import host_local_bus, truck_config
from servers import free_port


def rss_mb(pid: int) -> float:
    "Resident set size of process `pid`, MB (Linux /proc)."
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"): return int(line.split()[1]) / 1024
    return float("nan")


def config(folder: Path, group: str, port: int, hmi_port: int) -> Path:
    return truck_config(folder / "soak.toml", group, port, hop_limit=0, hmi_kind="udp", hmi_port=hmi_port, episodes=1_000_000, seed=11,
                        agent={"hidden_units": [64, 64]})


def can_garbage(group: str, port: int, rate: float, stop: threading.Event, sent: dict) -> None:
    "Garbage on the truck's bus at `rate` messages/s until `stop`."
    import can
    from tspace.config.can import CanConfig
    from tspace.conn.can import SignalCodec
    codec = SignalCodec.from_config(CanConfig())
    ids = sorted(codec.messages)
    rng = random.Random(7)
    bus = can.Bus(interface="udp_multicast", channel=group, port=port, hop_limit=0, receive_own_messages=False)
    kinds = {
        "unknown_id": lambda: can.Message(arbitration_id=rng.choice([0x123, 0x3FF, 0x555, 0x7DF]), data=rng.randbytes(8), is_extended_id=False),
        "extended_same_number": lambda: can.Message(arbitration_id=rng.choice(ids), data=rng.randbytes(8), is_extended_id=True),
        "wrong_dlc": lambda: can.Message(arbitration_id=rng.choice(ids), data=rng.randbytes(rng.randint(0, 3)), is_extended_id=False),
        "random_payload": lambda: can.Message(arbitration_id=rng.choice(ids), data=rng.randbytes(8), is_extended_id=False),
        "error_frame": lambda: can.Message(arbitration_id=0, is_error_frame=True, data=b""),
        "uds_noise": lambda: can.Message(arbitration_id=0x7E8, data=rng.randbytes(8), is_extended_id=False),
    }
    names = list(kinds)
    period, nxt = 1.0 / rate, time.monotonic()
    try:
        while not stop.is_set():
            k = rng.choice(names)
            bus.send(kinds[k]())
            sent[k] = sent.get(k, 0) + 1
            nxt += period
            stop.wait(max(0.0, nxt - time.monotonic()))
    finally:
        bus.shutdown()


def hmi_garbage(port: int, rate: float, stop: threading.Event, sent: dict) -> None:
    "Malformed datagrams to the HMI gateway at `rate` datagrams/s until `stop`."
    rng = random.Random(8)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    kinds = {
        "random_bytes": lambda: rng.randbytes(rng.randint(1, 200)),
        "bad_utf8": lambda: b'{"status": "\xff\xfe"}',
        "huge_number": lambda: b'{"velocity": ' + b"9" * 400 + b"}",
        "deep_nesting": lambda: b"[" * 30_000 + b"]" * 30_000,
        "oversized": lambda: b'{"status": "' + b"x" * 60_000 + b'"}',
        "unknown_status": lambda: json.dumps({"status": rng.choice(["launch", "", 3, None])}).encode(),
    }
    names = list(kinds)
    period, nxt = 1.0 / rate, time.monotonic()
    try:
        while not stop.is_set():
            k = rng.choice(names)
            s.sendto(kinds[k](), ("127.0.0.1", port))
            sent[k] = sent.get(k, 0) + 1
            nxt += period
            stop.wait(max(0.0, nxt - time.monotonic()))
    finally:
        s.close()


def driver(port: int, episode_s: float, stop: threading.Event, done: dict) -> None:
    "The driver's buttons: begin, `episode_s` of driving, end_valid, 3 s pause, again."
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    send = lambda status: s.sendto(json.dumps({"status": status}).encode(), ("127.0.0.1", port))
    while not stop.wait(3.0):
        send("begin")
        if stop.wait(episode_s): break
        send("end_valid")
        done["episodes"] = done.get("episodes", 0) + 1
    s.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--can-rate", type=float, default=300.0)
    ap.add_argument("--hmi-rate", type=float, default=20.0)
    ap.add_argument("--episode-s", type=float, default=20.0)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tspace-soak-"))
    (group, port), hmi_port = host_local_bus(), free_port()
    cfg = config(work, group, port, hmi_port)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    truck = subprocess.Popen(TSPACE + ["sim", "--bus", "udp_multicast", "--channel", group, "--port", str(port), "--cycle", "triangle",
                                       "--loop", "--config", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    log = work / "run.log"
    stop, sent_can, sent_hmi, done = threading.Event(), {}, {}, {}
    t0 = time.monotonic()
    with open(log, "w") as fe:
        run = subprocess.Popen(TSPACE + ["run", "--config", str(cfg), "--data", str(work / "data"), "--quiet"],
                               stdout=subprocess.PIPE, stderr=fe, text=True, env=env)
        while "state frames flow" not in log.read_text():
            if run.poll() is not None: print(log.read_text()[-3000:]); return 1
            time.sleep(0.2)
        threads = [threading.Thread(target=f, args=args, daemon=True) for f, args in (
            (can_garbage, (group, port, a.can_rate, stop, sent_can)), (hmi_garbage, (hmi_port, a.hmi_rate, stop, sent_hmi)),
            (driver, (hmi_port, a.episode_s, stop, done)))]
        for t in threads: t.start()
        early_at = min(300.0, a.minutes * 60 / 6)
        early = None
        while time.monotonic() - t0 < a.minutes * 60 and run.poll() is None:
            if early is None and time.monotonic() - t0 >= early_at: early = rss_mb(run.pid)
            time.sleep(1.0)
        late = rss_mb(run.pid) if run.poll() is None else float("nan")
        stop.set()
        for t in threads: t.join(5)
        if run.poll() is None: run.send_signal(signal.SIGINT)
        out, _ = run.communicate(timeout=120)
    truck.send_signal(signal.SIGTERM)
    truck.communicate(timeout=30)
    wall = time.monotonic() - t0
    text = log.read_text()
    runs = list((work / "data" / "_runs").glob("*"))
    summary = json.loads((runs[0] / "summary.json").read_text()) if runs else {}
    print(f"== soak: {wall / 60:.1f} min, tspace run exit code {run.returncode}")
    print(f"sent on the bus: {sum(sent_can.values())} {dict(sorted(sent_can.items()))}")
    print(f"sent to the HMI: {sum(sent_hmi.values())} {dict(sorted(sent_hmi.items()))}")
    print(f"episodes marked by the driver: {done.get('episodes', 0)}; records stored: {summary.get('records_stored')}")
    print(f"worker failures: {summary.get('failures', 'no summary')}; 'worker' failure lines in the log: {text.count('failed:')}")
    print(f"bad input counted by the run: {json.dumps(summary.get('vehicle_stats', {}), default=str)}")
    print(f"RSS of tspace run: {early:.1f} MB at {early_at / 60:.1f} min, {late:.1f} MB at the end: {100 * (late / early - 1):+.1f} %")
    print(f"log: {log}")
    return 0 if run.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
