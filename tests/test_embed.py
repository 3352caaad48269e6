"The embeddings and batch commands stay optional: the `tspace` command starts without importing LanceDB, Dask or TensorFlow."
import subprocess, sys

from cli_helpers import clean_env


def test_the_command_line_loads_without_lancedb_and_dask():
    code = ("import sys; import tspace.cli.main as m; m.main(['batch', 'infer', '--help']); "
            "print(sorted(k for k in ('lancedb', 'dask', 'distributed', 'tensorflow') if k in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "--chunk_records" in r.stdout and "--scheduler" in r.stdout, r.stdout
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout
