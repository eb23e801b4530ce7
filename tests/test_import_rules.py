"""Import rules of src/: no cycle anywhere, the layers of pyproject.toml, remote-code isolation.

The layer and remote-code contracts live in pyproject.toml ([tool.importlinter]) and are
checked with import-linter; the cycle check covers every module pair, including imports
made inside functions (grimp reads every import statement, not only the top-level ones).
"""

from __future__ import annotations

from pathlib import Path

import grimp
import networkx as nx
from importlinter.cli import lint_imports

REPOSITORY = Path(__file__).resolve().parents[1]


def import_graph() -> nx.DiGraph:
    graph = grimp.build_graph("fmanet_hf", include_external_packages=False, cache_dir=None)
    edges = nx.DiGraph()
    for module in graph.modules:
        edges.add_node(module)
        for imported in graph.find_modules_directly_imported_by(module):
            edges.add_edge(module, imported)
    return edges


def test_no_import_cycle_anywhere_in_the_package():
    graph = import_graph()
    assert graph.number_of_nodes() > 50  # the whole package was read
    cycles = [sorted(component) for component in nx.strongly_connected_components(graph) if len(component) > 1]
    assert cycles == [], f"import cycles: {cycles}"


def test_layer_and_remote_code_contracts_hold(monkeypatch):
    monkeypatch.chdir(REPOSITORY)
    assert lint_imports(config_filename=str(REPOSITORY / "pyproject.toml"), no_cache=True, no_logo=True) == 0


def test_no_private_name_is_imported_across_modules():
    offenders = []
    for path in sorted((REPOSITORY / "src" / "fmanet_hf").rglob("*.py")):
        if "checkpoints" in path.parts:
            continue  # copies of the remote-code files
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            stripped = line.strip()
            if not stripped.startswith("from .") or " import " not in stripped:
                continue
            names = stripped.split(" import ", 1)[1].strip("()").split(",")
            private = [n.strip().split(" as ")[0] for n in names if n.strip().startswith("_") and not n.strip().startswith("__")]
            if private:
                offenders.append(f"{path.relative_to(REPOSITORY)}:{number}: {private}")
    assert offenders == []
