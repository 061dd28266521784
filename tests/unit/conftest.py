"""Fixtures shared by unit test modules."""

import pytest

from tests.unit.cli_harness import live  # noqa: F401  (the live-API fixture of the CLI tests)
from tests.unit.fakes import FakeCluster
from tests.unit.store_backends import etcd_single, etcd_trio, store_backend  # noqa: F401  (store backends' fixtures)


@pytest.fixture
def cluster():
    """A Registry in memory with recording client and shared informers, on a FakeClock."""
    fake = FakeCluster()
    yield fake
    fake.close()
