"""Execute notebooks in place and store their outputs (``make notebooks``).

nbclient with ``record_timing=False`` keeps the saved widget state and writes no per-cell
timestamps, so re-executing an unchanged notebook gives an unchanged file. Run with
``OMP_NUM_THREADS=1`` (the Makefile does) so outputs match the strict nbval run in CI.

    python tools/execute_notebooks.py                 # every notebook
    python tools/execute_notebooks.py notebooks/X.ipynb [...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def execute(path: Path, timeout: int = 1200) -> float:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
        store_widget_state=True,
    )
    start = time.perf_counter()
    client.execute()
    nbformat.write(nb, path)
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    paths = [Path(p).resolve() for p in argv] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    for path in paths:
        seconds = execute(path)
        print(f"{seconds:7.1f} s  {path.relative_to(ROOT)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
