"""`import tspace` and the lower layers stay light: no TensorFlow, no plotting, no simulator on import."""
import subprocess, sys

HEAVY = ("tensorflow", "keras", "matplotlib", "torch")


def imported_by(statement: str) -> set[str]:
    code = f"{statement}; import sys; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return {m.split(".")[0] for m in out.split()}


def test_import_tspace_is_light():
    mods = imported_by("import tspace")
    assert not mods & set(HEAVY), mods & set(HEAVY)
    assert "pandas" not in mods and "pydantic" not in mods, "import tspace must not pull in the layers"


def test_config_and_data_layers_do_not_import_tensorflow():
    mods = imported_by("import tspace.config.run, tspace.data.codec, tspace.system.supervisor")
    assert not mods & set(HEAVY), mods & set(HEAVY)


def test_version_is_exposed():
    import tspace
    assert tspace.__version__.count(".") == 2
