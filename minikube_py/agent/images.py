"""Getting a container's image before it starts: imagePullPolicy, pull secrets, pulls off the
pod's worker, kubelet's pull back-off, events and messages.

For each container start the agent asks `ImagePulls.ensure`. The policy decides (kubelet's
`image_manager.go`): `Never` uses what the node has (`ErrImageNeverPull` otherwise),
`IfNotPresent` pulls only when the image is missing, `Always` pulls every time a container
starts (a pull of an unchanged tag costs one manifest request). Images made on this node (the
busybox image, `image import|load|build`) have no registry to come from, so `Always` uses them as
they are; the policy's default (`Always` for `:latest` and untagged images) is the API's.

A pull runs in a small pool of its own (`pulls_in_parallel`), never on a pod's worker: a hung
registry holds one pull slot, not the node. The container waits as `ContainerCreating` meanwhile
and the pod is synced again when the pull ends. A failed pull shows `ErrImagePull` with the
runtime's message, then `ImagePullBackOff` until the back-off (10 s doubling to 300 s, per pod
and image, as kubelet's) lets the next pull start. Credentials come from the pod's
`imagePullSecrets`, or else its ServiceAccount's (what Kubernetes' ServiceAccount admission
copies into the pod), `kubernetes.io/dockerconfigjson` and `kubernetes.io/dockercfg` Secrets.
"""

from __future__ import annotations

import base64
import binascii
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from minikube_py.agent.containers import container_field_path
from minikube_py.api.defaults import default_image_pull_policy
from minikube_py.client.events import NORMAL, WARNING
from minikube_py.runtime.types import ContainerRuntimeError, PulledImage, ResolvedImage

SECRET_KEYS = {"kubernetes.io/dockerconfigjson": ".dockerconfigjson", "kubernetes.io/dockercfg": ".dockercfg"}


@dataclass
class PullBackOff:
    failures: int
    retry_at: float
    message: str
    reported: bool = False  # the BackOff event of this window is out


@dataclass
class EnsureResult:
    """The image to start from, or why not yet: `retry_after` seconds (None: an event will wake the pod)."""

    image: ResolvedImage | None = None
    retry_after: float | None = None


class ImagePulls:
    def __init__(self, runtime, clock, recorder, wake: Callable[[str], None], secrets: Callable[[str, str], Any],
                 service_accounts: Callable[[str, str], Any], backoff_initial: float, backoff_max: float,
                 pulls_in_parallel: int = 3):
        self.runtime = runtime
        self.clock = clock
        self.recorder = recorder
        self.wake = wake
        self.secrets = secrets
        self.service_accounts = service_accounts
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        # 0: pull on the caller's thread (unit tests drive the agent step by step).
        self.pool = ThreadPoolExecutor(pulls_in_parallel, thread_name_prefix="image-pull") if pulls_in_parallel else None
        self._lock = threading.Lock()
        self._running: dict[tuple[str, str], Future] = {}
        self._backoff: dict[tuple[str, str], PullBackOff] = {}

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)

    def forget(self, uid: str) -> None:
        with self._lock:
            for key in [key for key in self._backoff if key[0] == uid]:
                del self._backoff[key]

    def ensure(self, pod, container, container_record) -> EnsureResult:
        """The container's image per its pull policy; raises ContainerRuntimeError for
        ErrImageNeverPull, InvalidImageName and ErrImagePull (the caller's creation-failure path)."""
        image = container.image
        key = (pod.metadata.uid, image)
        with self._lock:
            running = self._running.get(key)
            if running is not None and not running.done():
                return EnsureResult()
            if running is not None:
                del self._running[key]
            backoff = self._backoff.get(key)
        if running is not None:  # a pull this pod started has ended: its result, and its events
            return self._finished(pod, container_record, key, running)
        policy = container.image_pull_policy or default_image_pull_policy(image)
        present = self._present(image)
        if policy == "Never" or (present is not None and (policy == "IfNotPresent" or not present.from_registry)):
            if present is None:
                raise ContainerRuntimeError("ErrImageNeverPull",
                                            f'Container image "{image}" is not present with pull policy of Never')
            self.recorder.event(pod, NORMAL, "Pulled", f'Container image "{image}" already present on machine', container_field_path(pod, container.name))
            return EnsureResult(present)
        now = self.clock.now()
        if backoff is not None and now < backoff.retry_at:
            if not backoff.reported:
                backoff.reported = True
                self.recorder.event(pod, NORMAL, "BackOff", f'Back-off pulling image "{image}"', container_field_path(pod, container.name))
                self.recorder.event(pod, WARNING, "Failed", "Error: ImagePullBackOff", container_field_path(pod, container.name))
            container_record.set_waiting("ImagePullBackOff",
                                         f'Back-off pulling image "{image}": ErrImagePull: {backoff.message}')
            return EnsureResult(retry_after=backoff.retry_at - now)
        self.recorder.event(pod, NORMAL, "Pulling", f'Pulling image "{image}"', container_field_path(pod, container.name))
        configs = self._docker_configs(pod)
        started = self.clock.monotonic()
        future: Future = Future()
        if self.pool is None:
            self._pull(future, image, configs, started)
            return self._finished(pod, container_record, key, future)
        with self._lock:
            self._running[key] = future
        self.pool.submit(self._pull, future, image, configs, started, pod.metadata.uid)
        return EnsureResult()

    def _pull(self, future: Future, image: str, configs, started: float, uid: str | None = None) -> None:
        try:
            pulled = self.runtime.pull_image(image, configs)
            future.set_result((pulled, self.clock.monotonic() - started))
        except ContainerRuntimeError as error:
            future.set_exception(error)
        except Exception as error:  # a defect must not leave the pod waiting forever
            future.set_exception(ContainerRuntimeError("ErrImagePull", f'failed to pull and unpack image "{image}": {error}'))
        if uid is not None:
            self.wake(uid)

    def _finished(self, pod, container_record, key: tuple[str, str], future: Future) -> EnsureResult:
        image = key[1]
        error = future.exception()
        if error is None:
            pulled, waited = future.result()
            assert isinstance(pulled, PulledImage)
            with self._lock:
                self._backoff.pop(key, None)
            self.recorder.event(pod, NORMAL, "Pulled",
                                f'Successfully pulled image "{image}" in {_seconds(pulled.seconds)} '
                                f'({_seconds(waited)} including waiting). Image size: {pulled.image.size} bytes.',
                                container_field_path(pod, container_record.name))
            return EnsureResult(pulled.image)
        message = getattr(error, "message", str(error))
        with self._lock:
            previous = self._backoff.get(key)
            failures = previous.failures + 1 if previous else 1
            delay = min(self.backoff_initial * 2 ** (failures - 1), self.backoff_max)
            self._backoff[key] = PullBackOff(failures, self.clock.now() + delay, message)
        self.recorder.event(pod, WARNING, "Failed", f'Failed to pull image "{image}": {message}', container_field_path(pod, container_record.name))
        self.recorder.event(pod, WARNING, "Failed", "Error: ErrImagePull", container_field_path(pod, container_record.name))
        container_record.set_waiting("ErrImagePull", message)
        return EnsureResult(retry_after=delay)

    def _present(self, image: str) -> ResolvedImage | None:
        try:
            return self.runtime.image_config(image)
        except ContainerRuntimeError as error:
            if error.reason == "ErrImageNeverPull":
                return None
            raise

    def _docker_configs(self, pod) -> list[tuple[str, bytes]]:
        """(where, config JSON) of the pod's pull secrets, or its ServiceAccount's; missing or
        malformed ones are left out with kubelet's FailedToRetrieveImagePullSecret event."""
        namespace = pod.metadata.namespace or "default"
        references = list(pod.spec.image_pull_secrets or [])
        if not references:
            account = self.service_accounts(namespace, pod.spec.service_account_name or "default")
            references = list(getattr(account, "image_pull_secrets", None) or [])
        configs = []
        for reference in references:
            name = reference.name or ""
            secret = self.secrets(namespace, name)
            key = SECRET_KEYS.get(getattr(secret, "type", None) or "")
            decoded = _decode((secret.data or {}).get(key) if secret is not None and key else None)
            if decoded is None:
                self.recorder.event(pod, WARNING, "FailedToRetrieveImagePullSecret",
                                    f'Unable to retrieve some image pull secrets ({name}); attempting to pull the image '
                                    "may not succeed.")
                continue
            configs.append((f"secret {namespace}/{name}", decoded))
        return configs


def _decode(value: str | None) -> bytes | None:
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _seconds(value: float) -> str:
    """Go's duration style, as kubelet prints pull times: 1.234s, 512ms."""
    if value < 1:
        return f"{value * 1000:.0f}ms"
    return f"{value:.3f}".rstrip("0").rstrip(".") + "s"
