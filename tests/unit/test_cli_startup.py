"""The CLI's start-up budget, guarded by what a command imports rather than by a stopwatch.

Every `minikube-py` command used to build all the pydantic models before it parsed its arguments
(about half a second). The CLI, `minikube_py.api` and the resource table now import models only
when a command uses them; these tests pin that down deterministically, in a fresh interpreter,
by the modules present in `sys.modules`.
"""

from __future__ import annotations

import ast
import json
import pathlib
import subprocess
import sys

import pytest

from minikube_py import api

REPO = pathlib.Path(__file__).resolve().parents[2]
HEAVY = ("pydantic", "wsproto", "yaml", "minikube_py.api.core", "minikube_py.api.apps", "minikube_py.api.meta",
         "minikube_py.client.api")


def modules_after(statements: str) -> set[str]:
    """The modules loaded in a fresh interpreter after running `statements`."""
    code = f"{statements}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                            check=True)
    return set(json.loads(result.stdout.splitlines()[-1]))


def heavy_among(modules: set[str]) -> list[str]:
    return sorted(name for name in modules if any(name == heavy or name.startswith(heavy + ".") for heavy in HEAVY))


def test_building_the_cli_parser_imports_no_models_and_no_stream_library():
    modules = modules_after("from minikube_py.cli import main\nmain.build_parser()")
    assert heavy_among(modules) == []


def test_resolving_resource_names_imports_no_models():
    modules = modules_after("from minikube_py import api\n"
                            "assert api.resource_for('deploy').plural == 'deployments'\n"
                            "assert api.resource_and_version_for('hpa.v1.autoscaling')[1] == 'autoscaling/v1'")
    assert heavy_among(modules) == []


def test_the_http_transport_and_table_printers_import_no_models_and_no_stream_library():
    # What `get pods` needs: the transport, the resource table and the printers.
    modules = modules_after("import minikube_py.client.transport, minikube_py.cli.tables, minikube_py.cli.get")
    assert heavy_among(modules) == []


def test_a_stream_imports_the_websocket_library_but_no_models():
    modules = modules_after("import minikube_py.client.remote_command")
    assert "wsproto" in modules
    assert [name for name in heavy_among(modules) if not name.startswith("wsproto")] == []


def test_asking_for_a_model_imports_its_module_on_first_use():
    modules = modules_after("from minikube_py import api\nassert api.Pod.__name__ == 'Pod'")
    assert "minikube_py.api.core" in modules
    assert "minikube_py.api.autoscaling" not in modules


def type_checking_names() -> dict[str, str]:
    """The names `minikube_py/api/__init__.py` re-exports, from its TYPE_CHECKING block."""
    tree = ast.parse((REPO / "minikube_py" / "api" / "__init__.py").read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If))
    return {alias.asname or alias.name: node.module or "" for node in block.body if isinstance(node, ast.ImportFrom)
            for alias in node.names}


@pytest.mark.parametrize("name", sorted(type_checking_names()))
def test_every_re_exported_name_resolves_to_the_object_its_module_defines(name):
    module = type_checking_names()[name]
    value = getattr(api, name)
    if module == "minikube_py.api":  # a module of the package: `api.errors`
        assert value.__name__ == f"minikube_py.api.{name}"
    else:
        assert value is getattr(sys.modules[module], name)
    assert name in dir(api)


def test_an_unknown_name_is_an_attribute_error_naming_it():
    with pytest.raises(AttributeError, match="no attribute 'NoSuchModel'"):
        api.NoSuchModel  # noqa: B018


def test_a_module_of_the_package_is_reachable_as_an_attribute():
    assert api.printers.PRINTERS["pods"].columns


def test_every_resource_reference_names_a_model_or_function_that_exists():
    for info in api.RESOURCES.values():
        assert info.model.__name__ == info.kind
        for rule in (info.defaults, info.validate, info.validate_update):
            assert rule is None or callable(rule)
        for served in info.versions:
            assert served.model.model_fields
            assert callable(served.to_storage) and callable(served.from_storage)
    hpa = api.RESOURCES["horizontalpodautoscalers"]
    assert hpa.version("autoscaling/v1").model is api.autoscaling_v1.HorizontalPodAutoscaler
    assert hpa.version("autoscaling/v1").to_storage is api.autoscaling_v1.to_v2
