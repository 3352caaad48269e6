"""The layer rule of tspace, checked on source: a module imports only its own layer and those below,
and no set of modules imports itself in a circle.

The layer table is read from the README's "How it is organised" section, so the documented order
and the enforced one are the same text. Imports are read with `ast`, all of them: module level,
inside functions, under `if TYPE_CHECKING`; relative imports are resolved against the module's
package. `tspace/__init__.py` (the version) and the generated `tspace/_modidx.py` are outside the table.
"""
from __future__ import annotations
import ast, re
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

OUTSIDE_TABLE = {"tspace", "tspace._modidx"}


@dataclass(frozen=True)
class Layer:
    order: int
    sections: tuple[str, ...]
    may_import: str


def read_layer_table(readme: Path) -> list[Layer]:
    "The rows of the first table under '## How it is organised' (columns: layer, section, what lives there, may import)."
    text = Path(readme).read_text(encoding="utf-8")
    part = text.split("## How it is organised", 1)
    if len(part) < 2: raise ValueError(f"{readme}: no '## How it is organised' section")
    lines = [l.strip() for l in part[1].split("\n## ", 1)[0].splitlines()]
    start = next((i for i, l in enumerate(lines) if l.startswith("|")), None)
    if start is None: raise ValueError(f"{readme}: 'How it is organised' has no table")
    rows = []
    for l in lines[start:]:
        if not l.startswith("|"): break
        rows.append([c.strip() for c in l.strip("|").split("|")])
    header = [h.lower() for h in rows[0]]
    want = ["layer", "section", "what lives there", "may import"]
    if header != want: raise ValueError(f"{readme}: layer table header is {rows[0]}, expected {want}")
    layers = []
    for cells in rows[2:]:
        if not cells[0].isdigit(): raise ValueError(f"{readme}: layer {cells[0]!r} is not a number")
        sections = tuple(re.findall(r"`([a-z_]+)`", cells[1]))
        if not sections: raise ValueError(f"{readme}: layer {cells[0]} names no `section`")
        layers.append(Layer(int(cells[0]), sections, cells[3]))
    return layers


def layer_of_section(layers: list[Layer]) -> dict[str, int]:
    out = {}
    for layer in layers:
        for s in layer.sections:
            if s in out: raise ValueError(f"section {s!r} is in layers {out[s]} and {layer.order}")
            out[s] = layer.order
    return out


def module_files(root: Path) -> dict[str, list[Path]]:
    "Dotted module name -> its files, for every .py file of the package at `root` (a folder named like the package)."
    root = Path(root)
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__": parts = parts[:-1]
        out.setdefault(".".join(parts), []).append(path)
    return out


def imports_of(module: str, path: Path, known: set[str]) -> list[tuple[int, str]]:
    "(line, imported tspace module) for every import statement of `path`; `from X import y` counts as X.y when that is a module."
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    top = module.split(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else: target = node.module
            for a in node.names:
                sub = f"{target}.{a.name}"
                found.append((node.lineno, sub if sub in known else target))
    out = []
    for line, name in found:
        if name != top and not name.startswith(top + "."): continue
        while name not in known and "." in name: name = name.rpartition(".")[0]   # `import tspace.x.y` of a missing y
        out.append((line, name))
    return sorted(set(out))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    "Import cycles, each as [a, b, ..., a] where every module imports the next; one per loop until none is left."
    graph = {m: set(targets) for m, targets in graph.items()}
    found = []
    while True:
        try:
            TopologicalSorter(graph).prepare()      # a module's imports are its predecessors
            return found
        except CycleError as e:
            cycle = e.args[1][::-1]                 # graphlib lists each predecessor first
        found.append(cycle)
        graph[cycle[0]].discard(cycle[1])           # break this loop and look for the next


def check_layers(root: Path, layers: list[Layer]) -> list[str]:
    "One message per import that goes up the layer table, per module outside it, and per import inside a cycle; [] if all is well."
    root = Path(root)
    rank = layer_of_section(layers)
    found = module_files(root)
    files = {m: max(paths, key=lambda p: p.name == "__init__.py") for m, paths in found.items()}   # a package wins, as in Python
    known = set(files)
    where = lambda m: files[m].relative_to(root.parent).as_posix()
    def layer(m):
        s = m.split(".")[1]
        return f"layer {rank[s]} {s}"
    problems, graph, lines = [], {m: set() for m in files if m not in OUTSIDE_TABLE}, {}
    for m, paths in found.items():
        if len(paths) > 1:
            problems.append(f"{' and '.join(p.relative_to(root.parent).as_posix() for p in paths)} are both {m}; "
                            f"Python imports the package, the module is dead code")
    for m in graph:
        section = m.split(".")[1]
        if section not in rank:
            problems.append(f"{where(m)}: section {section!r} is not in the README's layer table")
            continue
        for line, target in imports_of(m, files[m], known):
            if target in OUTSIDE_TABLE: continue
            t_section = target.split(".")[1]
            if t_section not in rank: continue          # reported for that module itself
            if rank[t_section] > rank[section]:
                problems.append(f"{where(m)}:{line}: {m} ({layer(m)}) imports {target} ({layer(target)}): "
                                "a lower layer never imports a higher one")
            graph[m].add(target)
            lines.setdefault((m, target), line)
    reported = set()
    for cycle in _cycles(graph):
        for i, (a, b) in enumerate(zip(cycle, cycle[1:])):
            if (a, b) in reported: continue
            reported.add((a, b))
            chain = " -> ".join(cycle[i:-1] + cycle[:i + 1])
            problems.append(f"{where(a)}:{lines[a, b]}: {a} ({layer(a)}) imports {b} ({layer(b)}), closing the cycle {chain}")
    return problems
