"""What the subprocess tests of the `tspace` command share: where the installed script is, and a clean environment."""
import os, shutil, sys
from pathlib import Path

_beside = Path(sys.executable).parent / "tspace"      # the script installed beside this interpreter (a virtualenv need not be on PATH)
TSPACE = str(_beside) if _beside.exists() else shutil.which("tspace")
if TSPACE is None: raise RuntimeError("the `tspace` console script is not installed (pip install -e .)")


def clean_env(extra: dict | None = None) -> dict:
    "This process's environment without any TSPACE_* variable (so the user's settings cannot leak in), plus `extra`."
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("TSPACE_")}
    env.update({"TF_CPP_MIN_LOG_LEVEL": "3", **(extra or {})})
    return env
