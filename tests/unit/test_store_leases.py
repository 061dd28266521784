"""Store leases: the allocators' book never hands a value out twice, on every backend."""

import threading

import pytest

from minikube_py.store import PoolExhausted


@pytest.fixture
def store(store_backend):
    with store_backend.open() as store:
        yield store


def test_each_owner_gets_a_different_value_and_the_same_one_when_asking_again(store):
    candidates = ["10.0.0.2", "10.0.0.3", "10.0.0.4"]
    first = store.allocate("pod-ips", candidates, "uid-a")
    second = store.allocate("pod-ips", candidates, "uid-b")
    assert first != second
    assert store.allocate("pod-ips", candidates, "uid-a") == first
    assert store.allocations("pod-ips") == {first: "uid-a", second: "uid-b"}


def test_released_values_are_handed_out_again(store):
    value = store.allocate("pod-ips", ["v1", "v2"], "a")
    assert store.release("pod-ips", "a") == value
    assert store.release("pod-ips", "a") is None
    assert store.allocate("pod-ips", ["v1", "v2"], "b") == value


def test_an_exhausted_pool_raises_with_a_hint(store):
    store.allocate("pool", ["only"], "a")
    with pytest.raises(PoolExhausted, match="release some"):
        store.allocate("pool", ["only"], "b")


def test_pools_are_independent(store):
    assert store.allocate("one", ["x"], "a") == "x"
    assert store.allocate("two", ["x"], "a") == "x"


def test_concurrent_allocations_never_share_a_value(store):
    results = {}

    def allocate(owner):
        results[owner] = store.allocate("pod-ips", (f"10.0.0.{i}" for i in range(2, 255)), owner)

    threads = [threading.Thread(target=allocate, args=(f"uid-{n}",)) for n in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results.values())) == 100
    assert store.allocations("pod-ips") == {value: owner for owner, value in results.items()}
