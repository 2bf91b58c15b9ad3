"""The layering STYLE.md asks for, checked on the real import graph (grimp).

web → services → models → core; jobs → services. Services never import ``jobs`` (they
``schedule`` a registered job by name), and no module imports itself back through
others — lazy imports inside functions count too.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from functools import cache

import grimp
import pytest

from portal.queue import JOBS


@cache
def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("portal", "jobs")


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_services_never_import_jobs() -> None:
    graph = _graph()
    offenders = {
        (importer, imported)
        for importer in graph.find_children("portal.services")
        | graph.find_descendants("portal.services")
        for imported in graph.find_modules_directly_imported_by(importer)
        if imported == "jobs" or imported.startswith("jobs.")
    }
    assert offenders == set()


@pytest.mark.parametrize("lower", ["portal.services", "portal.models"])
def test_lower_layers_never_import_the_web(lower: str) -> None:
    graph = _graph()
    chains = graph.find_shortest_chains(importer=lower, imported="portal.web", as_packages=True)
    assert chains == set()


def test_there_is_no_import_cycle() -> None:
    assert _cycles(_graph()) == []


def _job_modules() -> list[str]:
    """Every module of the ``jobs`` package (each may define ``@job`` functions)."""
    import jobs

    return [f"jobs.{m.name}" for m in pkgutil.iter_modules(jobs.__path__) if not m.ispkg]


def test_every_registered_job_is_a_job_function_and_every_job_is_registered() -> None:
    registered = set()
    for name, spec in JOBS.items():
        module, _, func_name = spec.path.rpartition(".")
        func = getattr(importlib.import_module(module), func_name)
        assert func_name == name
        assert hasattr(func, "__wrapped__"), f"{spec.path} is not wrapped by @job"
        registered.add(spec.path)
    defined = {
        f"{module}.{name}"
        for module in _job_modules()
        for name, value in inspect.getmembers(importlib.import_module(module), inspect.isfunction)
        if hasattr(value, "__wrapped__") and value.__module__ == module
    }
    assert defined == registered
