"""What the subprocess tests of the `tspace` command share: where the installed script is, a clean environment, and a wait for a log line."""
import os, re, shutil, sys, time
from pathlib import Path

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
