"""The shape of the code: modules readable in one sitting, functions that fit on a screen, no import cycles,
and tests that mirror the package (tests/<package path>/test_<module>.py)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fercore"
MAX_MODULE_LINES = 420  # "about 400"
MAX_FUNCTION_LINES = 80


def modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def test_modules_and_functions_are_small():
    too_long = [f"{p.relative_to(ROOT)}: {n} lines" for p in modules().values()
                if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES]
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines: {too_long}"
    long_functions = []
    for path in modules().values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long_functions.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {n} lines")
    assert not long_functions, f"functions over {MAX_FUNCTION_LINES} lines: {long_functions}"


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports, anywhere in the file (also inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {t for t in targets if t in known and t != name}
    return found


def test_no_import_cycles():
    known = set(modules())
    graph = {name: imports_of(name, path, known) for name, path in modules().items()}
    # A package imports its own modules (re-exports); a module importing its package gets that package's
    # imports, which is not a cycle through the module itself unless the package imports it back.
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in graph[node]:
            if node.startswith(nxt + "."):  # a module importing its own package: the package's __init__ runs first
                continue
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, f"import cycles: {cycles}"


def test_tests_mirror_the_package():
    """Every test file tests/<path>/test_<name>.py tests fercore/<path>/<name>.py (or the package <name>); the
    notebooks' end-to-end tests live in tests/notebooks, and a few files test the project as a whole."""
    whole_project = {"test_codebase.py", "test_environment.py", "test_readme.py"}
    strays = []
    for test in sorted((ROOT / "tests").rglob("test_*.py")):
        relative = test.relative_to(ROOT / "tests")
        if relative.parts[0] == "notebooks" or relative.name in whole_project:
            continue
        target = PACKAGE.joinpath(*relative.parts[:-1], relative.name[len("test_"):])
        if not (target.exists() or target.with_suffix("").is_dir()):
            strays.append(str(relative))
    assert not strays, f"test files without a module of the same name and place: {strays}"
