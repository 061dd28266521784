"""The node's ServiceAccount tokens for projected volumes: kubelet's token manager, in small.

A `serviceAccountToken` projection asks the API's TokenRequest (POST serviceaccounts/NAME/token)
for a token bound to the pod, with the projection's audience and lifetime. The answer is kept per
pod, account, audiences and lifetime, and asked for again once 80 % of its life has passed (or a
day), so a pod's sync does not mint a new token each time, while the file in the volume is renewed
before it expires. A failure is kubelet's `failed to fetch token: ...`.
"""

from __future__ import annotations

import threading
from typing import Callable

from minikube_py.agent.volumes import ServiceAccountToken
from minikube_py.api import errors
from minikube_py.api.times import parse_time

DEFAULT_SERVICE_ACCOUNT = "default"

_Key = tuple[str, str, tuple[str, ...], int]  # pod uid, account, audiences, expiration seconds


class ApiTokenSource:
    """Tokens from the API's TokenRequest, cached until they need renewing."""

    def __init__(self, client, now: Callable[[], float]):
        self.client = client
        self.now = now
        self._cache: dict[_Key, ServiceAccountToken] = {}
        self._lock = threading.Lock()

    def request_token(self, pod, audiences: list[str], expiration_seconds: int) -> ServiceAccountToken:
        account = pod.spec.service_account_name or DEFAULT_SERVICE_ACCOUNT
        key = (pod.metadata.uid, account, tuple(audiences), expiration_seconds)
        now = self.now()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and now < cached.renew_at:
            return cached
        body = {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"audiences": list(audiences), "expirationSeconds": expiration_seconds,
                     "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod.metadata.name,
                                        "uid": pod.metadata.uid}},
        }
        try:
            reply = self.client.raw.create_token(pod.metadata.namespace, account, body)
            status = reply["status"]
            token = ServiceAccountToken(status["token"], parse_time(status["expirationTimestamp"]), now)
        except errors.ApiError as error:
            raise ValueError(f"failed to fetch token: {error.message}") from None
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"failed to fetch token: the API's answer has no token ({error})") from None
        with self._lock:
            self._cache[key] = token
        return token

    def forget(self, pod_uid: str) -> None:
        with self._lock:
            for key in [key for key in self._cache if key[0] == pod_uid]:
                del self._cache[key]
