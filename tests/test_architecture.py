"""The architecture holds: the layer contract of pyproject.toml ([tool.importlinter]) is kept, and
no module of edgepack imports itself back through others (function-level imports count)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def import_graph() -> dict[str, set[str]]:
    """Module -> the edgepack modules it imports (module-level and inside functions), read by grimp,
    the library import-linter uses."""
    import grimp

    graph = grimp.build_graph("edgepack", cache_dir=None)
    return {module: set(graph.find_modules_directly_imported_by(module)) for module in graph.modules}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            found = visit(module)
            if found:
                return found
    return None


def test_no_module_imports_itself_back():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_layer_contract_is_kept():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if lint is None:
        pytest.fail("lint-imports is not installed; `make setup` installs the dev extra that brings it")
    done = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_the_command_index_names_every_command_with_its_help():
    """``edgepack --help`` lists commands from their modules' source (no import); the list must be what
    importing the modules gives."""
    import importlib
    import pkgutil

    from edgepack.cli import commands
    from edgepack.cli.index import command_index

    loaded = {}
    for info in pkgutil.iter_modules(commands.__path__):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        loaded.update({command.name: (module.__name__, command) for command in getattr(module, "COMMANDS", [])})
    index = command_index()
    assert set(index) == set(loaded)
    for name, (module, command) in loaded.items():
        assert index[name].module == module
        assert index[name].short_help == " ".join(command.help.split("\n\n")[0].split())


def test_help_imports_no_command_module_numpy_or_tensorflow():
    code = ("import sys, runpy\nsys.argv = ['edgepack', '--help']\ntry:\n    runpy.run_module('edgepack', "
            "run_name='__main__')\nexcept SystemExit:\n    pass\nloaded = [m for m in sys.modules if m.startswith("
            "'edgepack.cli.commands.') or m in ('numpy', 'tensorflow')]\nsys.stderr.write(repr(loaded))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stderr.strip().splitlines()[-1] == "[]", done.stderr[-2000:]
