"""The allowed import directions between Trellis's packages (ARCHITECTURE.md): a forbidden arrow fails here.

Every import statement counts, also those inside functions. A rule names the modules a package may import,
by dotted prefix; the most specific rule for the importing module applies, so it holds for files that do not
exist yet (a new `scheduler/x.py` gets the scheduler's rule).
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANYTHING = None

# importing package -> what of the project it may import (itself included); anything else of the project is
# forbidden. Imports of the standard library and third-party packages are not checked.
ALLOWED: dict[str, tuple[str, ...] | None] = {
    "kernel": ("kernel",),
    "images": ("images", "kernel"),
    "netns": ("netns", "kernel"),
    "garden": ("garden", "images", "netns", "kernel"),
    "registry_cache": ("registry_cache", "images", "kernel"),
    "scheduler": ("scheduler", "garden.client", "garden.models", "garden.errors", "registry_cache",
                  "images.reference", "kernel"),
    "trellis": ANYTHING,  # the console script and the demo sit on top of everything
}


def project_packages() -> set[str]:
    """Top-level packages of the repository (shipped ones, tests and bench): imports of these are checked."""
    return {d.name for d in ROOT.iterdir() if (d / "__init__.py").exists()}


def shipped_packages() -> set[str]:
    """The packages pyproject.toml installs."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        include = tomllib.load(f)["tool"]["setuptools"]["packages"]["find"]["include"]
    return {pattern.rstrip("*") for pattern in include}


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def imported(module: str, source: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, dotted name) of everything `module` imports; `from a import b` counts as a.b."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found += [(node.lineno, f"{base}.{alias.name}" if alias.name != "*" else base) for alias in node.names]
    return found


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    """The forbidden imports of `module` (given its source), as "module:line imports name"."""
    rules = [p for p in ALLOWED if _within(module, p)]
    if not rules:
        return [f"{module}: no rule for its package; add one to ALLOWED and ARCHITECTURE.md"]
    allowed = ALLOWED[max(rules, key=len)]
    if allowed is ANYTHING:
        return []
    project = project_packages()
    return [f"{module}:{line} imports {name}" for line, name in imported(module, source, is_package)
            if name.split(".")[0] in project and not any(_within(name, a) for a in allowed)]


def _modules() -> list[tuple[str, Path]]:
    found = []
    for package in sorted(shipped_packages()):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            found.append((".".join(parts[:-1] if parts[-1] == "__init__" else parts), path))
    return found


def test_every_shipped_package_has_a_rule_and_a_line_in_architecture_md() -> None:
    architecture = (ROOT / "ARCHITECTURE.md").read_text()
    assert shipped_packages() == set(ALLOWED)
    for package in ALLOWED:
        assert f"`{package}/`" in architecture, package


def test_no_forbidden_import_arrows() -> None:
    modules = _modules()
    assert len(modules) > 50  # the walk found the tree
    found = [v for module, path in modules for v in violations(module, path.read_text(), path.name == "__init__.py")]
    assert found == []


@pytest.mark.parametrize(("module", "source", "forbidden"), [
    ("netns.rules", "from garden.models import NetIn", ["netns.rules:1 imports garden.models.NetIn"]),
    ("images.local", "def f():\n    from garden.linux import idmap", ["images.local:2 imports garden.linux.idmap"]),
    ("kernel.syscalls", "import images.overlay", ["kernel.syscalls:1 imports images.overlay"]),
    ("registry_cache.server", "from garden import errors", ["registry_cache.server:1 imports garden.errors"]),
    ("garden.engine.backend", "from scheduler import brain", ["garden.engine.backend:1 imports scheduler.brain"]),
    ("registry_cache.staging", "from scheduler.models import Lrp",
     ["registry_cache.staging:1 imports scheduler.models.Lrp"]),
    ("garden.api.server", "from tests.support import fixtures", ["garden.api.server:1 imports tests.support.fixtures"]),
    ("scheduler.rep", "from garden.engine import backend", ["scheduler.rep:1 imports garden.engine.backend"]),
    ("scheduler.rep", "from garden.client import AsyncClient\nfrom garden import errors, models", []),
    ("scheduler.brain.auction", "from registry_cache.reference import parse_image_ref\n"
                                "from images.reference import parse\nfrom kernel import syscalls", []),
    ("scheduler.brain.auction", "from images import overlay", ["scheduler.brain.auction:1 imports images.overlay"]),
    ("garden.engine.container", "from images.provider import DiskStat\nfrom netns import networker\n"
                                "from kernel import idmap\nimport aiohttp", []),
    ("netns.bridged", "from .networker import NetIn\nfrom . import links", []),
    ("garden.api.server", "from . import codec\nfrom .. import models\nfrom ..linux import cgroups", []),
    ("trellis.cli", "from scheduler import cli\nfrom garden.engine import backend", []),
    ("newpackage.module", "import os", ["newpackage.module: no rule for its package; add one to ALLOWED and "
                                        "ARCHITECTURE.md"]),
])
def test_the_rules_catch_forbidden_arrows_in_any_file(module: str, source: str, forbidden: list[str]) -> None:
    assert violations(module, source) == forbidden
