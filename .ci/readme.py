#!/usr/bin/env python3
"""Write README.md from nbs/index.ipynb, or with --check fail if README.md is out of date.

nbdev's own `nbdev_readme` renders through Quarto, which no package registry ships; this does the
same job with nbconvert: markdown cells as they are, code cells as fenced Python with their
outputs, `#|` directives dropped, and links into `../res/` pointed at `res/` (the README sits at
the top of the repository, the notebook in `nbs/`).
"""
import sys, warnings
from pathlib import Path

import nbformat
from nbconvert import MarkdownExporter

ROOT = Path(__file__).resolve().parent.parent


def render() -> str:
    warnings.filterwarnings("ignore", message="Cell is missing an id field")  # nbdev_clean strips cell ids on purpose
    nb = nbformat.read(ROOT / "nbs" / "index.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = "\n".join(l for l in cell.source.splitlines() if not l.startswith("#|")).strip()
    nb.cells = [c for c in nb.cells if c.source]
    body, _ = MarkdownExporter().from_notebook_node(nb)
    body = body.replace("](../res/", "](res/").replace('src="../res/', 'src="res/')
    return "<!-- generated from nbs/index.ipynb by .ci/readme.py; edit the notebook, not this file -->\n\n" + body.strip() + "\n"


if __name__ == "__main__":
    text, readme = render(), ROOT / "README.md"
    if "--check" in sys.argv[1:]:
        if readme.read_text(encoding="utf-8") != text:
            sys.exit("README.md is out of date with nbs/index.ipynb: run `python .ci/readme.py` and commit it")
    else:
        readme.write_text(text, encoding="utf-8")
