"""The package's layers stay true: every import inside poselab points down (or sideways).

Layers, bottom up: errors, validate, progress < io < viz < pose < analysis, mnist < labeler/app,
live < demo < cli. Function-level (lazy) imports count as well: a lazy import that points up is
still a dependency that points up.
"""

from __future__ import annotations

import ast
from pathlib import Path

import poselab

PACKAGE = Path(poselab.__file__).parent

# first component under poselab -> rank; equal ranks may import each other
LAYERS = {
    "errors": 0,
    "validate": 0,
    "progress": 0,
    "io": 1,
    "viz": 2,
    "pose": 3,
    "analysis": 4,
    "mnist": 4,
    "labeler": 5,
    "app": 5,
    "live": 5,
    "demo": 6,
    "cli": 7,
    "__main__": 8,
}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "poselab" or len(parts) == 1:
        return None
    return parts[1]


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported poselab module) for every import statement in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "poselab":  # `from poselab import name`: where name lives
                for a in node.names:
                    target = poselab._API.get(a.name, f"poselab.{a.name}")
                    if a.name != "__version__":
                        found.append((node.lineno, target))
            else:
                found.append((node.lineno, node.module))
    return found


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    return ".".join(rel.parts)


def test_every_module_belongs_to_a_layer():
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "__init__.py":  # the lazy API table, not a layer
            continue
        assert _layer(_module_name(path)) in LAYERS, f"{path}: add it to the layer table"


def test_imports_only_point_down():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "__init__.py":
            continue
        source = _layer(_module_name(path))
        for line, target in _imports(path):
            layer = _layer(target)
            if layer is None or layer == source:
                continue
            if LAYERS[layer] > LAYERS[source]:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({source}) "
                              f"imports {target} ({layer})")
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


def test_the_checker_sees_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from poselab.analysis.analyze import analyze_videos\n")
    assert _imports(bad) == [(2, "poselab.analysis.analyze")]
    assert LAYERS[_layer("poselab.analysis.analyze")] > LAYERS[_layer("poselab.io.video")]
