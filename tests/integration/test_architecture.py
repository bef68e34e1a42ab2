"""The architecture's rules, checked on the source itself.

1. ``journeylab.core`` is the leaf: importing it loads no other journeylab package.
2. No module imports an underscore name from another package (``journeylab.X`` vs
   ``journeylab.Y``); inside one package private names are shared freely.
3. The module import graph, counting imports inside functions too, has no cycle.
4. Packages import only the packages below them (:data:`ALLOWED`).
5. An internal function takes at most four positional arguments; the rest are
   keyword-only (``*,``), so a call reads ``_full_tables(ev, base=..., rows=...)``.
6. No module is longer than :data:`MAX_MODULE_LINES` lines: a longer one holds more than
   one concept and is split by concept (computation, results, figures, ...).
7. The tests mirror the package: ``tests/<package>/test_*.py`` for each folder of
   ``src/journeylab``, ``tests/integration/`` for tests that run several packages
   together, and no test file directly in ``tests/``.

The graph is read from the AST, so a lazy import inside a function counts like
one at the top of the module; ``from journeylab.pkg import module`` is an edge to
that module, ``from journeylab.pkg import name`` one to the package's ``__init__``.
The implicit import of a module's own package ``__init__`` is left out: every
``__init__`` imports its submodules, so counting it would make each package a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
ROOT = "journeylab"

#: Which packages each package may import (besides itself), read off the code: the
#: journey path runs io -> journeys -> attribution, and every analysis package stands on
#: core alone or on the one package whose tables it reads. ``reports`` sits on top and
#: may import anything; the root ``journeylab/__init__.py`` re-exports lazily. Widening a
#: row is a design decision: make it here, deliberately, not by an import that slips in.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "io": {"core"},
    "datasets": {"core"},
    "experiments": {"core"},
    "voice": {"core"},
    "maps": {"core", "voice"},
    "customers": {"core"},
    "journeys": {"core", "io"},
    "attribution": {"core", "journeys"},
    "clv": {"core", "customers"},
    "actions": {"attribution", "clv", "core", "customers", "io", "journeys", "maps"},
}
PACKAGES = {*ALLOWED, "reports"}


@dataclass(frozen=True)
class Import:
    """One import statement's target, as seen in the importing module's source."""

    importer: str  # dotted module name
    target: str  # dotted module name the statement loads
    names: tuple[str, ...]  # names taken from it (empty for ``import x.y``)
    line: int
    lazy: bool  # inside a function or method

    def where(self) -> str:
        path = module_path(self.importer).relative_to(SRC.parent)
        kind = "function-level" if self.lazy else "module-level"
        shown = (
            f"from {self.target} import {', '.join(self.names)}"
            if self.names
            else (f"import {self.target}")
        )
        return f"{path}:{self.line} ({kind}) {shown}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_path(name: str) -> Path:
    base = SRC.joinpath(*name.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


MODULES: dict[str, Path] = {module_name(path): path for path in sorted((SRC / ROOT).rglob("*.py"))}


def package_of(module: str) -> str | None:
    """``journeylab.journeys.build`` -> ``journeys``; the root itself -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _is_package(module: str) -> bool:
    return MODULES.get(module, Path()).name == "__init__.py"


def _absolute(importer: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    if not _is_package(importer):
        base = base[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


class _Collector(ast.NodeVisitor):
    def __init__(self, importer: str) -> None:
        self.importer = importer
        self.depth = 0
        self.imports: list[Import] = []
        self.aliases: dict[str, str] = {}  # local name -> journeylab module it is bound to
        self.attributes: list[tuple[str, str, int]] = []  # (name or dotted chain, attribute, line)

    def _function(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.split(".")[0] == ROOT:
                self.imports.append(
                    Import(self.importer, alias.name, (), node.lineno, self.depth > 0)
                )
                if alias.asname:
                    self.aliases[alias.asname] = alias.name

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        target = _absolute(self.importer, node)
        if target.split(".")[0] != ROOT:
            return
        lazy = self.depth > 0
        plain = []
        for alias in node.names:
            sub = f"{target}.{alias.name}"
            if sub in MODULES:  # ``from journeylab.pkg import module`` loads that module
                self.imports.append(Import(self.importer, sub, (), node.lineno, lazy))
                self.aliases[alias.asname or alias.name] = sub
            else:
                plain.append(alias.name)
        if plain:
            self.imports.append(Import(self.importer, target, tuple(plain), node.lineno, lazy))

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain = []
        current: ast.expr = node
        while isinstance(current, ast.Attribute):
            chain.append(current.attr)
            current = current.value
        if isinstance(current, ast.Name):
            # ``journeylab.x.y._z`` or ``alias._z``; aliases are resolved once the whole file is read
            self.attributes.append((current.id, ".".join(reversed(chain)), node.lineno))
            return  # the inner attributes are part of this chain
        self.generic_visit(node)

    def private_uses(self) -> list[tuple[str, int]]:
        """``(module.attribute chain, line)`` of every private attribute reached through a module."""
        out = []
        for name, chain, line in self.attributes:
            base = ROOT if name == ROOT else self.aliases.get(name)
            if base is None:
                continue
            full = f"{base}.{chain}"
            # the module the private name is looked up in: the longest importable prefix
            parts = full.split(".")
            for i, part in enumerate(parts[1:], start=1):
                if part.startswith("_") and not part.startswith("__"):
                    out.append((".".join(parts[: i + 1]), line))
                    break
        return out


def _collect(module: str) -> _Collector:
    collector = _Collector(module)
    collector.visit(ast.parse(MODULES[module].read_text(), filename=str(MODULES[module])))
    return collector


COLLECTED = {module: _collect(module) for module in MODULES}
IMPORTS = [imp for collector in COLLECTED.values() for imp in collector.imports]


def import_graph() -> dict[str, set[str]]:
    """Module -> the journeylab modules it imports (module level and in functions)."""
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for imp in IMPORTS:
        if imp.target in MODULES:
            graph[imp.importer].add(imp.target)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected component that has one (Tarjan, then BFS)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm; the graph is small
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_one_cycle(graph, set(component)) for component in components]


def _one_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:  # breadth-first back to start, inside the component
        nxt_frontier = []
        for node in frontier:
            for nxt in sorted(graph[node] & component):
                if nxt == start:
                    return [*paths[node], start]
                if nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    raise AssertionError(f"no cycle through {start}")  # pragma: no cover


# -- the checks' own behaviour ----------------------------------------------------------


def test_the_collector_sees_lazy_and_relative_imports():
    code = (
        "from journeylab.journeys import build\n"
        "def f():\n"
        "    from .funnels import _parse_steps\n"
        "    import journeylab.core.sql\n"
    )
    collector = _Collector("journeylab.journeys.spark")
    collector.visit(ast.parse(code))
    seen = {(i.target, i.names, i.lazy) for i in collector.imports}
    assert seen == {
        ("journeylab.journeys.build", (), False),
        ("journeylab.journeys.funnels", ("_parse_steps",), True),
        ("journeylab.core.sql", (), True),
    }


def test_the_collector_sees_private_names_reached_through_a_module():
    code = (
        "import journeylab.journeys.build as jb\n"
        "from journeylab.customers import retention\n"
        "def f(x):\n"
        "    return jb._Events(x), retention._helper(x), journeylab.io.loaders._rank, x._ok\n"
    )
    collector = _Collector("journeylab.clv.models")
    collector.visit(ast.parse(code))
    assert sorted(collector.private_uses()) == [
        ("journeylab.customers.retention._helper", 4),
        ("journeylab.io.loaders._rank", 4),
        ("journeylab.journeys.build._Events", 4),
    ]


def test_find_cycles_reports_a_cycle_and_not_a_diamond():
    diamond = {"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}
    assert find_cycles(diamond) == []
    looped = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(looped) == [["a", "b", "c", "a"]]


def test_the_source_tree_is_read():
    assert "journeylab.journeys.build" in MODULES
    assert len(IMPORTS) > 100
    assert {package_of(m) for m in MODULES if package_of(m) is not None} == PACKAGES


# -- the rules -------------------------------------------------------------------------


def test_core_imports_no_other_journeylab_package():
    code = (
        "import sys, journeylab.core, pkgutil\n"
        "import journeylab.core as core\n"
        "for info in pkgutil.iter_modules(core.__path__, 'journeylab.core.'):\n"
        "    __import__(info.name)\n"
        "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('journeylab'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = done.stdout.split()
    assert "journeylab.core.sql" in loaded and "journeylab.core.errors" in loaded
    others = [m for m in loaded if m != ROOT and package_of(m) != "core"]
    assert others == [], f"importing journeylab.core loaded other packages: {others}"


def test_no_private_name_is_imported_from_another_package():
    offences = []
    for imp in IMPORTS:
        own, theirs = package_of(imp.importer), package_of(imp.target)
        if own == theirs:
            continue
        private = [n for n in imp.names if n.startswith("_")]
        private += [p for p in imp.target.split(".")[1:] if p.startswith("_")]
        if private:
            offences.append(f"{imp.where()}: private {private} of package {theirs}")
    for module, collector in COLLECTED.items():
        for chain, line in collector.private_uses():
            if package_of(chain) != package_of(module):
                offences.append(f"{MODULES[module].relative_to(SRC.parent)}:{line} uses {chain}")
    assert offences == [], "private names used across packages:\n" + "\n".join(offences)


def test_the_import_graph_has_no_cycle():
    cycles = find_cycles(import_graph())
    shown = "\n".join(" -> ".join(cycle) for cycle in cycles)
    assert cycles == [], f"import cycles (function-level imports included):\n{shown}"


def test_packages_import_only_the_layers_below_them():
    offences = []
    for imp in IMPORTS:
        own, theirs = package_of(imp.importer), package_of(imp.target)
        if own in (None, "reports") or theirs in (None, own):
            continue
        if theirs not in ALLOWED[own]:
            allowed = ", ".join(sorted(ALLOWED[own])) or "nothing else of journeylab"
            offences.append(f"{imp.where()}: {own} may import only {allowed}, not {theirs}")
    assert offences == [], "layering broken:\n" + "\n".join(offences)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_allowed_dependency_is_used(package):
    # The table describes the code; an allowance nobody uses is a stale rule.
    used = {
        package_of(imp.target)
        for imp in IMPORTS
        if package_of(imp.importer) == package and package_of(imp.target) not in (None, package)
    }
    assert used == ALLOWED[package], (
        f"{package} imports {sorted(used)} but ALLOWED in {Path(__file__).name} says "
        f"{sorted(ALLOWED[package])}: narrow the table to what the code uses"
    )


#: Internal functions may take this many positional parameters (``self``/``cls`` not counted).
MAX_POSITIONAL = 4


def test_internal_functions_take_at_most_four_positional_arguments():
    offences = []
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if not node.name.startswith("_") or node.name.startswith("__"):
                continue
            positional = [
                a.arg
                for a in [*node.args.posonlyargs, *node.args.args]
                if a.arg not in ("self", "cls")
            ]
            # objective functions handed to an optimiser get their data positionally (scipy's args=)
            if positional and positional[0] == "theta":
                continue
            if len(positional) > MAX_POSITIONAL:
                offences.append(
                    f"{path.relative_to(SRC.parent)}:{node.lineno} {node.name}({', '.join(positional)}): "
                    f"put '*,' after the first {MAX_POSITIONAL} at most"
                )
    assert offences == [], "internal functions with long positional signatures:\n" + "\n".join(
        offences
    )


# -- the tests mirror the package --------------------------------------------------------

TESTS = Path(__file__).resolve().parents[1]
#: The folder of the tests that run several packages together: the architecture itself,
#: packaging, the shipped notebooks, whole reports under hostile input, other companies'
#: vocabularies, the project file and the command line.
INTEGRATION = "integration"
PACKAGE_FOLDERS = {p.name for p in (SRC / ROOT).iterdir() if (p / "__init__.py").is_file()}
TEST_FILES = sorted(TESTS.rglob("test_*.py"))


def test_every_test_file_sits_in_the_folder_of_a_package():
    assert len(TEST_FILES) > 50
    misplaced = [
        str(path.relative_to(TESTS.parent))
        for path in TEST_FILES
        if len(path.relative_to(TESTS).parts) != 2
        or path.parent.name not in PACKAGE_FOLDERS | {INTEGRATION}
    ]
    assert misplaced == [], (
        "a test file goes in tests/<package>/ named after the folder of src/journeylab it "
        f"tests, or in tests/{INTEGRATION}/ when it runs several packages together: "
        + ", ".join(misplaced)
    )


def test_every_package_has_a_test_folder():
    folders = {path.parent.name for path in TEST_FILES}
    assert PACKAGE_FOLDERS - folders == set(), "packages without tests/<package>/ folder"


def test_test_file_names_are_unique_across_folders():
    # tests/ has no __init__.py: pytest imports each test file by its base name
    names = [path.name for path in TEST_FILES]
    repeated = sorted({name for name in names if names.count(name) > 1})
    assert repeated == [], f"test file names used in more than one folder: {repeated}"


#: Longest module allowed; past it a module holds more than one concept.
MAX_MODULE_LINES = 600


def test_no_module_is_longer_than_the_limit():
    modules = sorted((SRC / ROOT).rglob("*.py"))
    assert len(modules) > 50
    long = {
        str(path.relative_to(SRC)): n
        for path in modules
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}, f"modules over {MAX_MODULE_LINES} lines, to split by concept: {long}"
