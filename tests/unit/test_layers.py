"""The layers point one way (design.md section 3): a test, so an import in the wrong direction fails CI.

cli -> client -> api; controllers -> client -> api; agent -> runtime, client; apiserver -> store -> api.
`api` imports nothing of ours, and `runtime` knows nothing of API objects or their storage.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]

# Which of our packages each layer may import (besides itself). `clock` is a leaf everyone may use.
ALLOWED = {
    "minikube_py.api": set(),
    "minikube_py.clock": set(),
    "minikube_py.store": {"minikube_py.api"},
    "minikube_py.apiserver": {"minikube_py.api", "minikube_py.store", "minikube_py.clock"},
    "minikube_py.client": {"minikube_py.api", "minikube_py.clock"},
    "minikube_py.runtime": {"minikube_py.clock"},
    "minikube_py.agent": {"minikube_py.api", "minikube_py.client", "minikube_py.runtime", "minikube_py.clock"},
    "controllers": {"minikube_py.api", "minikube_py.client", "minikube_py.clock"},
    # The service proxy and the cluster DNS are clients of the API, as the controllers are.
    "minikube_py.proxy": {"minikube_py.api", "minikube_py.client", "minikube_py.clock"},
    "minikube_py.dns": {"minikube_py.api", "minikube_py.client", "minikube_py.clock"},
    # The CLI is a client; besides the API it drives the daemon (start/stop) and the host-local
    # image store (`image` commands, as `ctr images` works beside kubectl).
    "minikube_py.cli": {"minikube_py.api", "minikube_py.client", "minikube_py.clock", "minikube_py.daemon",
                        "minikube_py.nodes", "minikube_py.runtime.images"},
}
# Package metadata every layer may read.
EVERYONE = {"minikube_py.__version__"}
OURS = ("minikube_py", "controllers")


def layer_of(module: str) -> str | None:
    for layer in sorted(ALLOWED, key=len, reverse=True):
        if module == layer or module.startswith(layer + "."):
            return layer
    return None


def imports_of(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in OURS}


def module_name(path: pathlib.Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


SOURCES = sorted(p for package in OURS for p in (REPO / package).rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_imports_point_down_the_layers(path):
    layer = layer_of(module_name(path))
    if layer is None:
        return  # the daemon wires every layer together; that is its job
    allowed = ALLOWED[layer]
    wrong = sorted(
        name for name in imports_of(path)
        if layer_of(name) != layer and name not in EVERYONE
        and not any(name == a or name.startswith(a + ".") for a in allowed)
        and not any(a.startswith(name + ".") for a in allowed)  # `from minikube_py.runtime import images`
    )
    assert not wrong, f"{module_name(path)} ({layer}) imports {wrong}; allowed: {sorted(allowed) or 'nothing of ours'}"


def test_every_source_file_belongs_to_a_layer_or_is_the_daemon():
    loose = [module_name(p) for p in SOURCES if layer_of(module_name(p)) is None]
    # nodes.py wires a node's agent, proxy and DNS as daemon.py wires the whole cluster.
    assert set(loose) <= {"minikube_py", "minikube_py.daemon", "minikube_py.nodes", "minikube_py.__main__"}, loose


def runtime_imports_of(path: pathlib.Path) -> set[str]:
    """Our modules `path` imports when it runs (not under `if TYPE_CHECKING:`), relative ones resolved."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    type_only: set[int] = set()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(child) for statement in node.body for child in ast.walk(statement))
    found = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            submodules = {f"{base}.{alias.name}" for alias in node.names} & MODULES.keys()
            found.update(submodules)
            if len(submodules) < len(node.names):
                found.add(base)
    return {name for name in found if name in MODULES and name != module_name(path)}


MODULES = {module_name(path): path for path in SOURCES}


def test_no_module_imports_itself_through_others():
    """An import circle means neither module can be read, tested or replaced without the other."""
    graph = {name: runtime_imports_of(path) for name, path in MODULES.items()}
    circles = []
    for start in sorted(graph):
        # Depth-first from each module: a path that comes back to `start` is a circle.
        stack = [(start, [start])]
        seen = set()
        while stack:
            module, route = stack.pop()
            for imported in sorted(graph[module]):
                if imported == start:
                    circles.append(" -> ".join(route + [start]))
                elif imported not in seen and imported > start:  # report each circle once, from its least module
                    seen.add(imported)
                    stack.append((imported, route + [imported]))
    assert not circles, "import circles:\n" + "\n".join(circles)
