"The layer table of the README holds for every import in tspace/, and the check catches what breaks it."
import shutil
from pathlib import Path

import pytest

from layers import check_layers, layer_of_section, read_layer_table

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


@pytest.fixture(scope="module")
def layers():
    return read_layer_table(README)


def test_the_table_is_the_designed_order(layers):
    test_order = [(l.order, l.sections) for l in layers]
    assert test_order == [(0, ("system",)), (1, ("data",)), (2, ("config",)), (3, ("conn",)), (4, ("storage",)),
                          (5, ("sim",)), (6, ("agent",)), (7, ("dataflow",)), (8, ("loop",)), (9, ("dist",)),
                          (10, ("avatar", "report", "monitor")), (11, ("cli",))]
    for l in layers:   # the "may import" column says the same as the order
        want = "its own layer only" if l.order == 0 else (
            "its own layer and layer 0" if l.order == 1 else f"its own layer and layers 0–{l.order - 1}")
        assert l.may_import == want, (l.order, l.may_import)


def test_every_import_goes_down_the_table(layers):
    problems = check_layers(ROOT / "tspace", layers)
    assert not problems, "\n".join(problems)


def test_notebook_numbers_are_layers(layers):
    rank = layer_of_section(layers)
    wrong = []
    for nb in sorted((ROOT / "nbs").glob("[0-9][0-9]_*.ipynb")):
        number, _, name = nb.stem.partition("_")
        section = name.split(".")[0]
        if rank.get(section) != int(number): wrong.append(f"{nb.name}: section {section!r} is layer {rank.get(section)}")
    assert not wrong, "\n".join(wrong)


def _copy_package(tmp_path: Path) -> Path:
    dst = tmp_path / "tspace"
    shutil.copytree(ROOT / "tspace", dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dst


def test_an_upward_import_and_a_cycle_are_reported(layers, tmp_path):
    pkg = _copy_package(tmp_path)
    before = set(check_layers(pkg, layers))
    (pkg / "data" / "bad.py").write_text('"An upward import."\nfrom tspace.loop.types import EpisodeData\n')
    (pkg / "system" / "ring_a.py").write_text("def f():\n    from .ring_b import g\n    return g\n")
    (pkg / "system" / "ring_b.py").write_text("import os\n\n\nfrom tspace.system import ring_a\ndef g(): pass\n")
    (pkg / "sim" / "late.py").write_text("def build():\n    from ..agent import ddpg\n")   # upward, relative, inside a function
    new = sorted(set(check_layers(pkg, layers)) - before)
    assert len(new) == 4, "\n".join(new)
    up, late, ring_a, ring_b = new[0], new[1], new[2], new[3]
    assert up.startswith("tspace/data/bad.py:2: tspace.data.bad (layer 1 data) imports tspace.loop.types (layer 8 loop)"), up
    assert late.startswith("tspace/sim/late.py:2: tspace.sim.late (layer 5 sim) imports tspace.agent.ddpg (layer 6 agent)"), late
    assert ring_a.startswith("tspace/system/ring_a.py:2: tspace.system.ring_a (layer 0 system) imports tspace.system.ring_b "
                             "(layer 0 system), closing the cycle tspace.system.ring_a -> tspace.system.ring_b -> tspace.system.ring_a"), ring_a
    assert ring_b.startswith("tspace/system/ring_b.py:4: tspace.system.ring_b (layer 0 system) imports tspace.system.ring_a"), ring_b
    assert ring_b.endswith("closing the cycle tspace.system.ring_b -> tspace.system.ring_a -> tspace.system.ring_b"), ring_b


def test_a_section_outside_the_table_is_reported(layers, tmp_path):
    pkg = _copy_package(tmp_path)
    before = set(check_layers(pkg, layers))
    (pkg / "extras").mkdir()
    (pkg / "extras" / "__init__.py").write_text("")
    new = sorted(set(check_layers(pkg, layers)) - before)
    assert new == ["tspace/extras/__init__.py: section 'extras' is not in the README's layer table"], new


def test_a_module_shadowed_by_a_package_is_reported(layers, tmp_path):
    pkg = _copy_package(tmp_path)
    (pkg / "report").mkdir(exist_ok=True)
    (pkg / "report" / "__init__.py").write_text("")
    (pkg / "report.py").write_text("")
    problems = check_layers(pkg, layers)
    assert "tspace/report/__init__.py and tspace/report.py are both tspace.report; " \
           "Python imports the package, the module is dead code" in problems, problems


def test_the_table_is_read_from_markdown(tmp_path):
    md = tmp_path / "README.md"
    md.write_text("# x\n\n## How it is organised\n\ntext\n\n| layer | section | what lives there | may import |\n|---|---|---|---|\n"
                  "| 0 | `system` | errors | its own layer only |\n| 1 | `data`, `extra` | specs | its own layer and layer 0 |\n\n## Next\n")
    got = read_layer_table(md)
    assert [(l.order, l.sections) for l in got] == [(0, ("system",)), (1, ("data", "extra"))]
    md.write_text("## How it is organised\n\n| section | what |\n|---|---|\n| `data` | x |\n")
    with pytest.raises(ValueError, match="header"): read_layer_table(md)
