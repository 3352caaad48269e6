"""`import tspace` and the lower layers stay light: no TensorFlow, no plotting, no simulator on import; the command line
loads the layers only when a command runs, and the layers below it hold no command-line code."""
import ast, subprocess, sys
from pathlib import Path

HEAVY = ("tensorflow", "keras", "matplotlib", "torch")
PACKAGE = Path(__file__).resolve().parent.parent / "tspace"


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


def test_the_command_line_imports_no_layer_until_a_command_runs():
    "`tspace --help` and `--version` import every command module: none of them may load pandas, pydantic or TensorFlow."
    mods = imported_by("import tspace.cli.main, tspace.cli.common, tspace.cli.run, tspace.cli.sim, tspace.cli.replay, "
                       "tspace.cli.train, tspace.cli.pool, tspace.cli.config")
    assert not mods & {*HEAVY, "numpy", "pandas", "pydantic"}, mods & {*HEAVY, "numpy", "pandas", "pydantic"}


def imports_in(path: Path) -> list[tuple[int, str]]:
    "(line, module) of every import statement in `path`, inside functions too; relative imports resolved."
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import): found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            found.append((node.lineno, ".".join([*base, node.module] if node.module else base)))
    return found


def test_the_layers_below_the_command_line_hold_no_entry_point():
    "Entry points live in tspace.cli: the CAN transport and the simulated truck import no run config, no layer above them and no fastcore.script."
    banned = ("fastcore.script", "tspace.config.run", "tspace.dataflow", "tspace.storage", "tspace.cli")
    for name in ("conn/can.py", "sim/ecu.py", "sim/tbox.py"):
        found = [(line, m) for line, m in imports_in(PACKAGE / name) if m.startswith(banned)]
        assert not found, (name, found)
    assert ("tspace.config.can" in {m for _, m in imports_in(PACKAGE / "conn/can.py")})     # the check resolves relative imports


def test_version_is_exposed():
    import tspace
    assert tspace.__version__.count(".") == 2
