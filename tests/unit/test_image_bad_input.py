"""Issue 11's bad input at the puller: a registry that is down or too slow gives a clean error that
names the image and the cause, after the retries, and leaves nothing in the store."""

from __future__ import annotations

import os

import httpx
import pytest

from minikube_py.runtime.images import ImageStore
from minikube_py.runtime.images.platforms import Platform
from minikube_py.runtime.images.puller import PullError, Puller
from minikube_py.runtime.images.registry import RegistryClient, RetryPolicy


def puller_with(handler, tmp_path) -> tuple[Puller, list[float]]:
    slept: list[float] = []
    client = RegistryClient(retry=RetryPolicy(attempts=3, first_delay=0.5), transport=httpx.MockTransport(handler),
                            sleep=slept.append)
    return Puller(ImageStore(str(tmp_path / "home")), client, platform=Platform("linux", "amd64")), slept


@pytest.mark.parametrize("failure, cause", [
    (httpx.ConnectError("[Errno 111] Connection refused"), "cannot be reached: [Errno 111] Connection refused"),
    (httpx.ReadTimeout("timed out"), "cannot be reached: timed out"),
])
def test_a_registry_that_is_down_or_too_slow_fails_cleanly_after_the_retries(tmp_path, failure, cause):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise failure

    puller, slept = puller_with(handler, tmp_path)
    with pytest.raises(PullError) as caught:
        puller.pull("reg.test/team/app:v1")
    assert caught.value.kind == "unavailable"
    assert caught.value.message.startswith('failed to pull and unpack image "reg.test/team/app:v1": '
                                           'failed to resolve reference "reg.test/team/app:v1": ')
    assert cause in caught.value.message
    assert len(calls) == 3 and slept == [0.5, 1.0], "retried with doubling back-off, then given up"
    store = puller.store
    assert store.list() == [] and os.listdir(store.ingest_directory) == []
    assert [name for name in os.listdir(store.layers_directory)] == []
