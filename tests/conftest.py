"""Test ordering and gating shared by unit and e2e tests.

e2e tests (marked `e2e`, under tests/e2e/) start real clusters and real pods: they need root,
are skipped cleanly without it, and run after the unit tests. The test command runs modules on
several pytest-xdist workers, a module whole on one worker (pyproject.toml's addopts), and hands
modules out in the order below: so e2e modules, each with a cluster of its own, run side by side,
the longest first, and the suite ends when the last short one does.
"""

import os

import pytest

# Each e2e module's rough wall time relative to the others (seconds on a loaded machine, from
# `--durations=0`); a module not listed counts as a middling one. Only the order depends on it.
E2E_MODULE_WEIGHTS = {
    "test_lifecycle_e2e.py": 700, "test_pods_e2e.py": 585, "test_docs_runnable_e2e.py": 515,
    "test_security_e2e.py": 465, "test_services_e2e.py": 295, "test_images_e2e.py": 130,
    "test_services_cli_e2e.py": 250, "test_cluster_e2e.py": 240, "test_deployments_e2e.py": 235,
    "test_hooks_e2e.py": 230, "test_kubectl_streams_e2e.py": 195, "test_volumes_e2e.py": 180,
    "test_access_e2e.py": 135, "test_jobs_e2e.py": 105, "test_benchmarks_before_after_e2e.py": 105,
    "test_benchmarks_quick_e2e.py": 100, "test_services_rollout_e2e.py": 100, "test_etcd_store_e2e.py": 85, "test_etcd_ha_e2e.py": 100,
    "test_supervisor_faults_e2e.py": 75, "test_runtime_e2e.py": 65, "test_kubectl_e2e.py": 60,
    "test_config_e2e.py": 55, "test_upgrade_e2e.py": 55, "test_storage_faults_e2e.py": 30,
    "test_network_cgroups_e2e.py": 15, "test_daemonset_e2e.py": 115,
    # The fourth session's modules: rough wall times from their authors' runs under load.
    "test_nodes_e2e.py": 300, "test_image_build_e2e.py": 150, "test_kubectl_battery_e2e.py": 250,
    "test_autoscaling_e2e.py": 210, "test_scheduling_e2e.py": 150, "test_statefulset_e2e.py": 120,
    "test_python_client_e2e.py": 90, "test_helm_e2e.py": 60, "test_kubectl_apply_e2e.py": 60,
    "test_kubectl_schema_e2e.py": 45,
}
UNLISTED_E2E_WEIGHT = 200


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)

    def order(item) -> tuple:
        if item.get_closest_marker("e2e") is None:
            return (0, 0, "")
        module = os.path.basename(str(item.fspath))
        return (1, -E2E_MODULE_WEIGHTS.get(module, UNLISTED_E2E_WEIGHT), module)

    # Stable sort: unit tests keep their order, e2e modules follow, longest first, each whole.
    items.sort(key=order)
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="e2e tests run real pods and need root")
        for item in items:
            if item.get_closest_marker("e2e") is not None:
                item.add_marker(skip)
