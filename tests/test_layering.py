"""Imports point one way: link <- semantic <- sim."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"link": ("semantic", "sim"), "semantic": ("sim",)}


def _imports(path: Path, package: str):
    tree = ast.parse(path.read_text())
    depth = len(path.relative_to(ROOT / package).parts)  # file's depth inside the package
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                yield node.module or ""
            elif node.level >= depth + 1:  # climbs out of the package: ..sim, ...sim
                yield "lgvsc." + (node.module or "")


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_upward_imports(package):
    bad = []
    for path in (ROOT / package).rglob("*.py"):
        for mod in _imports(path, package):
            for other in FORBIDDEN[package]:
                if mod == f"lgvsc.{other}" or mod.startswith(f"lgvsc.{other}."):
                    bad.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert not bad, bad
