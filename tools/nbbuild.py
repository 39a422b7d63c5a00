"""Write a chapter notebook from a list of cells (used when authoring chapters).

Usage from a script::

    from tools.nbbuild import md, code, write_notebook
    write_notebook("notebooks/11_gumbel_max.ipynb", [md("# Title"), code("x = 1")])

The Colab setup cell is added first automatically. The notebook is written without outputs;
run ``make notebooks`` (or ``python tools/execute_notebooks.py PATH``) to execute it and store
its outputs.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def repository_url() -> str:
    """The repository URL, read from ``_config.yml`` (the one place it is written)."""
    text = (ROOT / "_config.yml").read_text()
    match = re.search(r"^repository:\s*\n\s+url:\s*(\S+)", text, flags=re.MULTILINE)
    if not match:
        raise RuntimeError("_config.yml has no repository.url")
    return match.group(1)


def setup_cell() -> nbformat.NotebookNode:
    """The first cell of every chapter: install the package on Colab, do nothing elsewhere."""
    source = (
        "# Setup: on Colab, install this book's package from its repository; elsewhere do nothing.\n"
        "try:\n"
        "    import google.colab  # noqa: F401\n"
        "\n"
        "    IN_COLAB = True\n"
        "except ImportError:\n"
        "    IN_COLAB = False\n"
        "if IN_COLAB:\n"
        f'    %pip install --quiet "neural-memory[book] @ git+{repository_url()}"'
    )
    return code(source, tags=["remove-cell"])


def md(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(text.strip("\n"))


def code(text: str, tags: list[str] | None = None) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(text.strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def write_notebook(path: str | Path, cells: list[nbformat.NotebookNode]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [setup_cell(), *cells]
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    path = ROOT / path
    nbformat.write(nb, path)
    return path


def refresh_setup_cells(paths: list[Path] | None = None) -> list[Path]:
    """Rewrite the first cell of each notebook to the current setup cell; keep everything else.

    Run ``python -m tools.nbbuild`` after changing the repository URL or the install line.
    """
    fresh = setup_cell().source
    changed = []
    for path in paths or sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        first = nb.cells[0]
        if first.cell_type != "code" or "google.colab" not in first.source:
            raise ValueError(f"{path}: the first cell is not the Colab setup cell")
        if first.source != fresh:
            first.source = fresh
            nbformat.write(nb, path)
            changed.append(path)
    return changed


if __name__ == "__main__":
    for p in refresh_setup_cells():
        print("refreshed", p.relative_to(ROOT))
