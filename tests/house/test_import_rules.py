"""The import rules of ``avcorr/__init__.py``'s docstring, checked on the source with ``ast``.

Static on purpose: nothing is imported (fast, no torch), and an import inside a function or under
``TYPE_CHECKING`` counts like one at the top of the file. Every failure lists each offending import
as ``file:line``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The trees checked: the library and the project's own tools (tests may import private names).
TREES = ("avcorr", "data_tools", "experiments", "configs")

# Which other parts of avcorr each part may import (besides itself, the top-level shared internals
# ``avcorr._*`` and the package root ``avcorr``). A part is a subpackage (``avcorr.models``) or a
# top-level module (``avcorr.config``); an entry may name one module of a part (``avcorr.tasks.base``).
# Top-level public modules (the command lines: ``avcorr.train``, ``avcorr.evaluate`` ...) may import
# any part; they are not listed.
LAYERS: dict[str, tuple[str, ...]] = {
    "avcorr.config": (),
    "avcorr.metrics": (),
    "avcorr.viz": (),
    "avcorr.losses": (),
    "avcorr.retrieval": (),
    "avcorr.models": (),
    "avcorr.data": (),
    # tasks implement the engine's contract (engine.protocol) and never import the trainer
    "avcorr.tasks": ("avcorr.config", "avcorr.data", "avcorr.losses", "avcorr.metrics", "avcorr.models", "avcorr.viz",
                     "avcorr.engine.protocol"),
    "avcorr.engine": ("avcorr.config", "avcorr.data", "avcorr.metrics"),
}


@dataclass(frozen=True)
class Import:
    """One imported module (``name`` None) or one name imported from a module."""

    importer: str  # dotted name of the importing module
    module: str  # dotted name of the imported module
    name: str | None  # the attribute taken from ``module`` (``from module import name``), if any
    where: str  # "path:line"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(dotted: str) -> bool:
    path = REPO.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(path: Path) -> list[Import]:
    """Every import statement of one file, relative imports resolved to absolute names."""
    importer = _module_name(path)
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    rel = path.relative_to(REPO).as_posix()
    found: list[Import] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=rel)):
        where = f"{rel}:{node.lineno}" if isinstance(node, (ast.Import, ast.ImportFrom)) else ""
        if isinstance(node, ast.Import):
            found += [Import(importer, alias.name, None, where) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                if alias.name != "*" and _is_module(sub):  # ``from pkg import submodule``
                    found.append(Import(importer, sub, None, where))
                else:
                    found.append(Import(importer, module, alias.name, where))
    return found


def _all_imports() -> list[Import]:
    files = sorted(p for tree in TREES for p in (REPO / tree).rglob("*.py"))
    assert files, f"no source found under {REPO}"
    return [imp for path in files for imp in _imports(path)]


ALL = _all_imports()


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _part(module: str) -> str:
    """The part of avcorr a module belongs to: ``avcorr.data.layout`` -> ``avcorr.data``."""
    return ".".join(module.split(".")[:2])


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _shared_internal(module: str) -> bool:
    """A top-level private module of avcorr (``avcorr._amp``, ``avcorr._cli`` ...)."""
    parts = module.split(".")
    return len(parts) >= 2 and parts[0] == "avcorr" and _private(parts[1])


def _owner(imp: Import) -> str | None:
    """The package a private module or name belongs to (None when nothing private is imported).

    ``avcorr.data._clip_media`` belongs to ``avcorr.data``; ``_Sink`` of ``avcorr.data.layout``
    also belongs to ``avcorr.data`` (a private name is shared within its package, never outside).
    """
    parts = imp.module.split(".")
    if parts[0] not in TREES:
        return None  # not a module of the project (a script's own neighbour, a third-party package)
    for i, part in enumerate(parts):
        if _private(part):
            return ".".join(parts[:i])
    if imp.name is not None and _private(imp.name):
        return imp.module if _is_module_package(imp.module) else imp.module.rpartition(".")[0]
    return None


def _is_module_package(dotted: str) -> bool:
    return (REPO.joinpath(*dotted.split(".")) / "__init__.py").is_file()


def _fail_on(violations: list[str]) -> None:
    """Fail with each violation once, in file order."""
    violations = list(dict.fromkeys(violations))
    if violations:
        pytest.fail(f"{len(violations)} import(s) break the rules of avcorr/__init__.py:\n  " + "\n  ".join(violations),
                    pytrace=False)


def layer_violations(imports: list[Import]) -> list[str]:
    """Imports of a part of avcorr that :data:`LAYERS` does not allow its importer."""
    violations = []
    for imp in imports:
        importer_part = _part(imp.importer)
        # the shared internals (avcorr._amp ...) import no other part: every part may import them
        allowed = LAYERS.get(importer_part, () if _shared_internal(importer_part) else None)
        if allowed is None or not _within(imp.module, "avcorr") or imp.module == "avcorr":
            continue
        if _within(imp.module, importer_part) or _shared_internal(imp.module):
            continue
        if not any(_within(imp.module, part) for part in allowed):
            violations.append(f"{imp.where}: {importer_part} imports {imp.module}")
    return violations


def private_violations(imports: list[Import]) -> list[str]:
    """Imports of a private module or name from outside the package that owns it."""
    violations = []
    for imp in imports:
        owner = _owner(imp)
        if owner is None or _within(imp.importer, owner) or _shared_internal(imp.module):
            continue
        what = imp.module if imp.name is None or not _private(imp.name) else f"{imp.module}.{imp.name}"
        violations.append(f"{imp.where}: {imp.importer} imports {what}, private to {owner}")
    return violations


def cycles(imports: list[Import], *, top_level_modules: bool) -> list[str]:
    """Import cycles between the parts of avcorr, each with the imports that close it.

    Args:
        imports: the imports to look at.
        top_level_modules: also count the top-level modules (the command lines) as parts; without
            it only the subpackages and ``avcorr.config`` are.

    Returns:
        One line per cycle: ``a -> b (file:line); b -> a (file:line)``.
    """
    def group(module: str) -> str | None:
        if not _within(module, "avcorr") or module == "avcorr":
            return None  # the root package (version, lazy attributes) sits below everything
        part = _part(module)
        return part if top_level_modules or _is_module_package(part) or part == "avcorr.config" else None

    edges: dict[str, dict[str, str]] = {}
    for imp in imports:
        a, b = group(imp.importer), group(imp.module)
        if a and b and a != b:
            edges.setdefault(a, {}).setdefault(b, imp.where)
    found = []

    def walk(path: list[str]) -> None:
        for nxt in edges.get(path[-1], {}):
            if nxt == path[0]:
                loop = path + [nxt]
                found.append("; ".join(f"{x} -> {y} ({edges[x][y]})" for x, y in zip(loop, loop[1:])))
            elif nxt not in path and nxt > path[0]:  # each cycle once, walked from its smallest part
                walk(path + [nxt])

    for start in sorted(edges):
        walk([start])
    return found


def test_the_checker_sees_the_imports():
    """The parser resolves relative imports, submodule imports and imports inside functions."""
    seen = {(imp.importer, imp.module, imp.name) for imp in ALL}
    assert ("avcorr.models", "avcorr.models.avenet", "AVENet") in seen  # from .avenet import AVENet
    assert ("avcorr.engine.trainer", "avcorr", "__version__") in seen  # from .. import __version__
    assert ("avcorr", "avcorr.models", None) in seen  # from . import models, inside __getattr__
    assert all(imp.where.count(":") == 1 for imp in ALL)
    assert set(LAYERS) <= {_part(imp.importer) for imp in ALL if imp.importer.startswith("avcorr.")}


def test_the_rules_catch_violations():
    """Each rule reports a made-up offending import with its file:line, and lets the allowed ones pass."""
    def imp(importer: str, module: str, name: str | None = None) -> Import:
        return Import(importer, module, name, f"{importer.replace('.', '/')}.py:7")

    assert layer_violations([imp("avcorr.metrics.avc", "avcorr.models.avenet", "AVENet")]) == [
        "avcorr/metrics/avc.py:7: avcorr.metrics imports avcorr.models.avenet"]
    assert layer_violations([imp("avcorr.models.sop", "avcorr.engine")]) != []
    assert layer_violations([imp("avcorr.engine.trainer", "avcorr.tasks.avc")]) != []
    assert layer_violations([imp("avcorr._cli", "avcorr.data.layout", "Clip")]) == [
        "avcorr/_cli.py:7: avcorr._cli imports avcorr.data.layout"]
    assert layer_violations([imp("avcorr.engine.trainer", "avcorr.tasks.base", "Task")]) != []
    assert layer_violations([imp("avcorr.tasks.avc", "avcorr.engine.trainer", "Trainer")]) != []
    assert layer_violations([imp("avcorr.tasks.base", "avcorr.engine.protocol", "Task"),
                             imp("avcorr.tasks.avc", "avcorr.models"), imp("avcorr.retrieval._embed", "avcorr._amp"),
                             imp("avcorr.train", "avcorr.engine")]) == []
    assert private_violations([imp("avcorr.tasks.sop", "avcorr.models._x", "f")]) == [
        "avcorr/tasks/sop.py:7: avcorr.tasks.sop imports avcorr.models._x, private to avcorr.models"]
    assert private_violations([imp("data_tools.split", "avcorr.data.layout", "_Sink")]) == [
        "data_tools/split.py:7: data_tools.split imports avcorr.data.layout._Sink, private to avcorr.data"]
    assert private_violations([imp("avcorr.data._tag_sources", "avcorr.data.layout", "_Sink"),
                               imp("avcorr.data.decode", "avcorr.data._decode_wav", "parse_wav"),
                               imp("data_tools.split", "avcorr._cli", "setup_logging"),
                               imp("avcorr.engine.trainer", "avcorr", "__version__")]) == []
    loop = [imp("avcorr.data.avc", "avcorr.models.sop", "X"), imp("avcorr.models.sop", "avcorr.viz.heatmap", "Y"),
            imp("avcorr.viz.heatmap", "avcorr.data", "Z")]
    assert cycles(loop, top_level_modules=False) == [
        "avcorr.data -> avcorr.models (avcorr/data/avc.py:7); avcorr.models -> avcorr.viz (avcorr/models/sop.py:7); "
        "avcorr.viz -> avcorr.data (avcorr/viz/heatmap.py:7)"]
    assert cycles(loop[:2], top_level_modules=False) == []
    cli_loop = [imp("avcorr.tag", "avcorr.recognize", "f"), imp("avcorr.recognize", "avcorr.tag", "g")]
    assert cycles(cli_loop, top_level_modules=False) == []
    assert len(cycles(cli_loop, top_level_modules=True)) == 1


def test_layers():
    """metrics, viz, losses, retrieval, models, data, config and the shared internals import no other
    part of avcorr; tasks and the engine import only the parts below them."""
    _fail_on(layer_violations(ALL))


def test_no_private_imports_across_packages():
    """A private module or name (``_x``) is imported only inside its own package; the top-level
    shared internals (``avcorr._amp``, ``avcorr._cli`` ...) by any module of the project."""
    _fail_on(private_violations(ALL))


def test_no_cycles_between_subpackages():
    """No two subpackages (or a subpackage and avcorr.config) import each other, even indirectly."""
    _fail_on(cycles(ALL, top_level_modules=False))


def test_no_cycles_between_top_level_modules():
    """The command-line modules do not import each other in a circle either."""
    _fail_on(cycles(ALL, top_level_modules=True))
