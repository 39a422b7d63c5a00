"""Execute every chapter as a Colab user would (``make colab``).

A Colab user has the notebook and the installed package, nothing else of the repository. Run this
with the interpreter of a virtual environment in which the package is installed from the checkout,
not editable (the Makefile builds one in ``_build/colab-venv``). For each notebook it:

- copies the notebook alone into a new, empty temporary folder;
- executes it there, top to bottom and unchanged (the Colab setup cell included, which does
  nothing outside Colab), with nbclient and this interpreter's ``python3`` kernel;
- fails, naming the chapter and the error's last line, if any cell raises.

It also compiles the fused C++ extension (``NTM.use_fused``) from the installed package, in an
empty folder, and checks one forward pass against the plain path.

Two chapters run at a time, each kernel on one thread (``OMP_NUM_THREADS=1``). The fused C++
extension is compiled into ``TORCH_EXTENSIONS_DIR`` (a new temporary folder when it is unset).

This file imports nothing from the repository: the chapters must work with the installed package.

    _build/colab-venv/bin/python tools/colab_check.py                 # every notebook
    _build/colab-venv/bin/python tools/colab_check.py notebooks/X.ipynb [...]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
KERNEL = "python3"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def check_environment() -> None:
    """Stop unless the package and the kernel both come from this interpreter's environment.

    ``import neural_memory`` is run from a new empty folder (as the chapters are) and must resolve
    to this environment's site-packages, not to a checkout's ``src/``.
    """
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    with tempfile.TemporaryDirectory(prefix="colab-import-") as empty:
        found = subprocess.run(
            [sys.executable, "-c", "import neural_memory; print(neural_memory.__file__)"],
            cwd=empty, capture_output=True, text=True, check=True,
        ).stdout.strip()
    if site not in Path(found).resolve().parents:
        sys.exit(f"neural_memory is imported from {found}, not from {site}: install the package "
                 "into this environment (not editable) and run this script with its interpreter")
    # jupyter_client launches a kernelspec whose command is a bare "python" with sys.executable.
    argv0 = KernelSpecManager().get_kernel_spec(KERNEL).argv[0]
    bare = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}
    if argv0 not in bare and os.path.abspath(argv0) != os.path.abspath(sys.executable):
        sys.exit(f"the {KERNEL!r} kernel runs {argv0}, not {sys.executable}")
    print(f"neural_memory from {found}", flush=True)


def last_line(err: BaseException) -> str:
    if isinstance(err, CellExecutionError) and err.ename:
        return ANSI.sub("", f"{err.ename}: {err.evalue}").strip().splitlines()[-1]
    lines = [line for line in ANSI.sub("", str(err)).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


def run_chapter(path: str, timeout: int) -> tuple[str, float, str | None, str]:
    """Execute one notebook alone in a new empty folder.

    Returns (name, seconds, the error's last line or None, the error's text and the kernel's
    stderr, or "").
    """
    source = Path(path)
    with (tempfile.TemporaryDirectory(prefix=f"colab-{source.stem}-") as folder,
          tempfile.TemporaryFile() as kernel_stderr):
        copy = Path(folder) / source.name
        shutil.copyfile(source, copy)
        nb = nbformat.read(copy, as_version=4)
        # The kernel talks over Unix sockets in the chapter's own folder, not over TCP ports:
        # two kernels started at once can race for the same free port, and a client connected
        # to the other chapter's kernel waits for replies that never come.
        km = KernelManager(kernel_name=KERNEL, transport="ipc", ip=str(Path(folder) / "kernel"))
        client = NotebookClient(
            nb,
            km=km,
            timeout=timeout,
            kernel_name=KERNEL,
            resources={"metadata": {"path": folder}},  # the kernel's working directory
        )
        start = time.perf_counter()
        try:
            client.execute(stderr=kernel_stderr)
        except Exception as err:  # a failing cell, a timeout, a dead kernel: the chapter fails
            seconds = time.perf_counter() - start
            kernel_stderr.seek(0)
            log = kernel_stderr.read().decode(errors="replace").strip()
            details = ANSI.sub("", str(err)) + (f"\nkernel stderr:\n{log}" if log else "")
            return source.name, seconds, last_line(err), details
        seconds = time.perf_counter() - start
    skipped = [i for i, cell in enumerate(nb.cells)
               if cell.cell_type == "code" and cell.source.strip() and not cell.execution_count]
    if skipped:
        return source.name, seconds, f"code cells not executed: {skipped}", ""
    return source.name, seconds, None, ""


# Compiles the fused extension from the installed package and checks it against the plain path.
FUSED_CHECK = """
import torch
from neural_memory.ntm import NTM, NTMConfig

torch.manual_seed(0)
model = NTM(NTMConfig.preset("tiny")).double()
x = torch.rand(2, 6, model.config.input_size, dtype=torch.float64)
with torch.no_grad():
    plain = model(x)
    fused = model.use_fused()(x)
torch.testing.assert_close(fused, plain)
"""


def run_fused_check(timeout: int) -> tuple[str, float, str | None, str]:
    """Build the fused C++ extension (``NTM.use_fused``) in a new empty folder and run it once."""
    name = "fused C++ extension"
    with tempfile.TemporaryDirectory(prefix="colab-fused-") as folder:
        start = time.perf_counter()
        try:
            done = subprocess.run([sys.executable, "-c", FUSED_CHECK], cwd=folder, timeout=timeout,
                                  capture_output=True, text=True)
        except subprocess.TimeoutExpired:
            return name, time.perf_counter() - start, f"no result after {timeout} s", ""
        seconds = time.perf_counter() - start
    if done.returncode:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        return name, seconds, lines[-1] if lines else f"exit {done.returncode}", done.stderr
    return name, seconds, None, ""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="default: every notebooks/*.ipynb")
    parser.add_argument("--jobs", type=int, default=2, help="chapters run at once (default 2)")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per cell (default 300)")
    parser.add_argument("--no-fused", dest="fused", action="store_false",
                        help="skip building and running the fused C++ extension")
    args = parser.parse_args(argv)

    paths = [str(Path(p).resolve()) for p in args.notebooks]
    paths = paths or [str(p) for p in sorted(NOTEBOOKS.glob("*.ipynb"))]
    if not paths:
        sys.exit(f"no notebooks in {NOTEBOOKS}")
    missing = [path for path in paths if not Path(path).is_file()]
    if missing:
        sys.exit(f"no such notebook: {', '.join(missing)}")

    # The kernels inherit this environment: one thread each, nothing from a checkout on the path.
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    os.environ.pop("PYTHONPATH", None)
    own_extensions = not os.environ.get("TORCH_EXTENSIONS_DIR")
    if own_extensions:
        os.environ["TORCH_EXTENSIONS_DIR"] = tempfile.mkdtemp(prefix="colab-torch-extensions-")
    # pip installs ninja next to the interpreter; the extension build looks for it on PATH.
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    check_environment()

    start = time.perf_counter()
    failures: list[tuple[str, str]] = []
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=spawn) as pool:
        futures = [pool.submit(run_fused_check, args.timeout)] if args.fused else []
        futures += [pool.submit(run_chapter, path, args.timeout) for path in paths]
        for future in as_completed(futures):
            name, seconds, error, details = future.result()
            print(f"{seconds:7.1f} s  {'FAIL' if error else 'ok  '}  {name}", flush=True)
            if error:
                failures.append((name, error))
                tail = "\n".join(details.strip().splitlines()[-25:])
                if tail:
                    print(f"---- {name} ----\n{tail}", file=sys.stderr, flush=True)
    if own_extensions:
        shutil.rmtree(os.environ["TORCH_EXTENSIONS_DIR"], ignore_errors=True)
    print(f"{time.perf_counter() - start:7.1f} s  wall time, {args.jobs} at a time")
    for name, error in failures:
        print(f"FAILED {name}: {error}")
    print(f"colab: {len(futures) - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
