"""Fixtures for e2e tests: one real cluster per test module, always stopped, leftovers reported."""

import os

import pytest

from tests.e2e.cluster import Cluster


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("e2e tests run real pods and need root")
    running = Cluster().start()
    try:
        yield running
    finally:
        leftovers = running.stop()
        assert not leftovers, f"cluster {running.name} left these on the host after stop: {leftovers}"
