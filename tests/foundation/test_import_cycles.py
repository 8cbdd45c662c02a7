"""No import cycle anywhere, module by module, function-level imports included.

import-linter's contracts (pyproject.toml, run by `.ci/run`) keep the packages' layers and the
siblings inside each package acyclic; this looks at every single module, so a cycle through a
package's `__init__` or a deferred import is caught too."""

from __future__ import annotations

from collections.abc import Mapping, Set

import grimp

PACKAGES = ("peebot", "peebot_ingest", "peebot_sim", "peebot_dagster", "peebot_iss")


def cycles(imports: Mapping[str, Set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module, and modules importing
    themselves (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root in imports:
        if root in index:
            continue
        work = [(root, iter(imports.get(root, ())))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(imports.get(target, ()))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in imports.get(node, ()):
                        found.append(component)
    return found


def test_cycles_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert sorted(map(sorted, cycles(graph))) == [["a", "b", "c"], ["e"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_module_imports_itself_through_others() -> None:
    graph = grimp.build_graph(*PACKAGES)
    imports = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    assert len(imports) > 100  # every module was seen
    assert cycles(imports) == []
