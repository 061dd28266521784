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
    # The CLI is a client; besides the API it drives the daemon (start/stop) and the host-local
    # image store (`image` commands, as `ctr images` works beside kubectl).
    "minikube_py.cli": {"minikube_py.api", "minikube_py.client", "minikube_py.clock", "minikube_py.daemon",
                        "minikube_py.runtime.images"},
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
    assert set(loose) <= {"minikube_py", "minikube_py.daemon", "minikube_py.__main__"}, loose
