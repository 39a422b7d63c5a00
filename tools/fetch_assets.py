"""Install the book's browser assets from the npm registry and lay them out for the build.

The rendered book must work with no internet. Three things would otherwise come from a CDN:

* MathJax 3 (``mathjax``), which typesets every equation;
* require.js (``requirejs``) and the Jupyter widgets HTML manager
  (``@jupyter-widgets/html-manager``), which render the saved state of the ipywidgets.

Next to them goes ``tools/assets/widgets-offline.js``, the book's own set-up script for the
widget manager: it points require.js at the local manager (whose icon fonts load relative to its
module) and lets the manager, written for MathJax 2, typeset widget labels with MathJax 3.

``package.json`` pins them and ``package-lock.json`` locks their integrity hashes. This script
runs ``npm ci`` (only when ``node_modules`` does not already hold the pinned versions), then copies
the files the book needs into ``_build/offline_assets/_static/vendor/``. ``_config.yml`` lists
``_build/offline_assets`` in ``html_extra_path``, so Sphinx copies the tree into the built book
as ``_static/vendor/...``; ``mathjax_path`` and ``nb_ipywidgets_js`` point there. The files are
kept out of the source ``_static/`` folder on purpose: Jupyter Book adds every ``*.js`` file
under it to every page, which would load hundreds of MathJax components and break the load order.

    python tools/fetch_assets.py          # what `make assets` runs
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODE_MODULES = ROOT / "node_modules"
OUT = ROOT / "_build" / "offline_assets"
VENDOR = OUT / "_static" / "vendor"

# MathJax's combined component that Sphinx loads by default (TeX and MathML input, CommonHTML
# output). The other combined components are not used; everything they could load lazily
# (TeX extensions, fonts, the accessibility and menu modules) lives in the sub-folders.
MATHJAX_ENTRY = "tex-mml-chtml.js"
FONT_SUFFIXES = {".woff", ".woff2", ".ttf", ".eot", ".svg"}
WIDGETS_SETUP = "widgets-offline.js"


def pinned_versions() -> dict[str, str]:
    return json.loads((ROOT / "package.json").read_text())["dependencies"]


def installed_version(name: str) -> str | None:
    manifest = NODE_MODULES / name / "package.json"
    if not manifest.is_file():
        return None
    return json.loads(manifest.read_text())["version"]


def npm_ci() -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm was not found: install Node.js and npm (apt-get install -y npm)")
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
        cwd=ROOT,
        check=True,
    )


def copy_tree(src: Path, dst: Path, keep=lambda path: True) -> int:
    count = 0
    for path in sorted(src.rglob("*")):
        if path.is_file() and keep(path):
            target = dst / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            count += 1
    return count


def layout() -> dict[str, int]:
    if OUT.exists():
        shutil.rmtree(OUT)
    counts = {}

    es5 = NODE_MODULES / "mathjax" / "es5"

    def keep_mathjax(path: Path) -> bool:
        top_level = path.parent == es5
        return not top_level or path.name == MATHJAX_ENTRY

    counts["mathjax"] = copy_tree(es5, VENDOR / "mathjax", keep_mathjax)
    shutil.copy2(NODE_MODULES / "mathjax" / "LICENSE", VENDOR / "mathjax" / "LICENSE")

    (VENDOR / "requirejs").mkdir(parents=True)
    shutil.copy2(NODE_MODULES / "requirejs" / "require.js", VENDOR / "requirejs" / "require.js")
    counts["requirejs"] = 1

    # embed-amd.js is self-contained; webpack loads its Font Awesome fonts from the folder the
    # script itself was loaded from, so they sit next to it.
    dist = NODE_MODULES / "@jupyter-widgets" / "html-manager" / "dist"

    def keep_manager(path: Path) -> bool:
        return path.name == "embed-amd.js" or path.suffix in FONT_SUFFIXES

    counts["@jupyter-widgets/html-manager"] = copy_tree(dist, VENDOR / "html-manager", keep_manager)

    # The book's own set-up script for the widget manager (see the file).
    shutil.copy2(ROOT / "tools" / "assets" / WIDGETS_SETUP, VENDOR / WIDGETS_SETUP)

    lines = ["Third-party browser assets, installed from the npm registry by tools/fetch_assets.py."]
    for name in sorted(pinned_versions()):
        meta = json.loads((NODE_MODULES / name / "package.json").read_text())
        lines.append(f"{name} {meta['version']} (license: {meta.get('license', 'see package')})")
    (VENDOR / "VERSIONS.txt").write_text("\n".join(lines) + "\n")
    return counts


def main() -> int:
    pinned = pinned_versions()
    if any(installed_version(name) != version for name, version in pinned.items()):
        npm_ci()
    wrong = {n: installed_version(n) for n, v in pinned.items() if installed_version(n) != v}
    if wrong:
        raise SystemExit(f"npm installed unexpected versions {wrong}; package.json pins {pinned}")
    counts = layout()
    summary = ", ".join(f"{name} ({n} files)" for name, n in counts.items())
    print(f"offline assets in {OUT.relative_to(ROOT)}: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
