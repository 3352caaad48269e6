"""What the subprocess tests of the `tspace` command share: where the installed script is, a clean environment, and a wait for a log line."""
import os, random, re, shutil, sys, time
from pathlib import Path

import tomli_w

_beside = Path(sys.executable).parent / "tspace"      # the script installed beside this interpreter (a virtualenv need not be on PATH)
TSPACE = str(_beside) if _beside.exists() else shutil.which("tspace")
if TSPACE is None: raise RuntimeError("the `tspace` console script is not installed (pip install -e .)")


def clean_env(extra: dict | None = None) -> dict:
    "This process's environment without any TSPACE_* variable (so the user's settings cannot leak in), plus `extra`."
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("TSPACE_")}
    env.update({"TF_CPP_MIN_LOG_LEVEL": "3", **(extra or {})})
    return env


def wait_for_text(path: Path, pattern: str, proc, timeout: float = 60.0, after: int = 0) -> int:
    "Wait until `pattern` occurs in the file `path` after offset `after` (failing if `proc` exits first); returns the offset past the match."
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, path.read_text()[after:])
        if m: return after + m.end()
        assert proc.poll() is None, f"the process exited ({proc.returncode}) waiting for {pattern!r}:\n{path.read_text()[-3000:]}"
        time.sleep(0.1)
    raise AssertionError(f"no {pattern!r} within {timeout:g} s:\n{path.read_text()[-3000:]}")


HOST_ONLY_ENV = {"TSPACE_VEHICLE__CAN__HOP_LIMIT": "0"}
"Environment for a `tspace sim` or `tspace run` on a udp_multicast bus without a config file: hop_limit 0, its frames stay on this host."


def host_local_bus() -> tuple[str, int]:
    "A random multicast group and UDP port for one test's udp_multicast bus (its configs set hop_limit 0: frames stay on this host)."
    return f"239.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(1, 254)}", random.randint(20000, 60000)


def truck_config(path: Path, group: str, port: int, *, hop_limit: int, hmi_kind: str, hmi_port: int = 1883, interface: str = "kvaser",
                 episodes: int = 1, seed: int = 5, watchdog_s: float | None = None, agent: dict | None = None) -> Path:
    "Write a run's config to `path`: a truck that `tspace sim` serves on the udp_multicast bus `group`:`port` (`hop_limit` 0: on this host), its HMI, a small agent."
    can = {"interface": "udp_multicast", "channel": group, "hop_limit": hop_limit, "bus_timeout_s": 20.0, "bus_kwargs": {"port": port}}
    if watchdog_s is not None: can["flash"] = {"watchdog_s": watchdog_s}
    cfg = {"episodes": episodes, "seed": seed, "log_level": "INFO", "vehicle": {"interface": interface, "can": can},
           "hmi": {"kind": hmi_kind, "port": hmi_port}, "agent": agent or {"hidden_units": [16, 16]}}
    path.write_text(tomli_w.dumps(cfg))
    return path
