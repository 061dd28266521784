"""Test ordering and gating shared by unit and e2e tests.

e2e tests (marked `e2e`, under tests/e2e/) start real clusters and real pods: they need root,
are skipped cleanly without it, and always run after every unit test.
"""

import os

import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
    # Stable sort: unit tests keep their order, e2e tests move to the end.
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="e2e tests run real pods and need root")
        for item in items:
            if item.get_closest_marker("e2e") is not None:
                item.add_marker(skip)
