"""The package's shape: no import cycles between its modules. (The layering contract itself
is checked by import-linter in .ci/run, from pyproject.toml's [tool.importlinter].)"""

from typing import Dict, List, Set

import grimp


def _cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """One import cycle of `graph`, or [] (iterative depth-first search)."""
    state: Dict[str, int] = {}  # 1 on the stack, 2 done
    for root in sorted(graph):
        if state.get(root):
            continue
        stack = [(root, iter(sorted(graph[root])))]
        path = [root]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            for child in children:
                if state.get(child) == 1:
                    return path[path.index(child) :] + [child]
                if not state.get(child):
                    state[child] = 1
                    path.append(child)
                    stack.append((child, iter(sorted(graph.get(child, ())))))
                    break
            else:
                state[node] = 2
                stack.pop()
                path.pop()
    return []


def test_the_cycle_finder_finds_cycles():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_module_of_the_package_imports_itself_back():
    g = grimp.build_graph("tfckpt")
    # The package's __init__ re-exports names; importing a submodule always runs it, which is
    # not an import of the submodule's own making.
    modules = {m for m in g.modules if m != "tfckpt"}
    graph = {
        m: {i for i in g.find_modules_directly_imported_by(m) if i in modules} for m in modules
    }
    assert _cycle(graph) == []
