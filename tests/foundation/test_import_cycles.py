"""No import cycle anywhere, module by module, function-level imports included.

import-linter's contracts (pyproject.toml, run by `.ci/run`) keep the packages' layers and the
siblings inside each package acyclic; this looks at every single module, so a cycle through a
package's `__init__` or a deferred import is caught too."""

from __future__ import annotations

import grimp

PACKAGES = ("peebot", "peebot_ingest", "peebot_sim", "peebot_dagster", "peebot_iss")


def cyclic_imports(graph: grimp.ImportGraph) -> list[tuple[str, str]]:
    """Every direct import `(module, imported)` that leads back to `module` (grimp's own
    path search: an import is on a cycle when a chain leads from the imported back)."""
    return [
        (module, imported)
        for module in sorted(graph.modules)
        for imported in sorted(graph.find_modules_directly_imported_by(module))
        if imported == module or graph.chain_exists(importer=imported, imported=module)
    ]


def test_cycles_are_found() -> None:
    graph = grimp.ImportGraph()
    for importer, imported in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("e", "e")]:
        graph.add_import(importer=importer, imported=imported)
    assert cyclic_imports(graph) == [("a", "b"), ("b", "c"), ("c", "a"), ("e", "e")]


def test_no_module_imports_itself_through_others() -> None:
    graph = grimp.build_graph(*PACKAGES)
    assert len(graph.modules) > 100  # every module was seen
    assert cyclic_imports(graph) == []
