"""Health endpoints: `/healthz`, `/livez` and `/readyz`, answered as kube-apiserver answers them.

Load balancers, kubeadm-style probes and `kubectl get --raw /readyz?verbose` read these. Each
endpoint runs a list of named checks: `ok` when all pass; with `?verbose` one `[+]name ok` line
per check and `<endpoint> check passed`; on any failure always the verbose text with
`[-]name failed: reason withheld` and `<endpoint> check failed`, as HTTP 500 (the reason goes
to the daemon log only, since these paths are open to anyone). `?exclude=NAME` skips a check,
and `/livez/NAME` runs one check alone (`ok`, or 500 `internal server error: REASON`).

The checks: `ping` (the server answers), `log` (logging works), `etcd` (the store answers a
read; the name is Kubernetes', whichever backend we run), and for `/readyz` also
`informer-sync` and `shutdown`, which fails once the server has begun to stop so that a load
balancer stops sending new requests.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from minikube_py.api import errors

log = logging.getLogger(__name__)

ENDPOINTS = ("healthz", "livez", "readyz")


class CheckFailed(Exception):
    """A health check's reason for failing."""


@dataclass(frozen=True)
class HealthCheck:
    name: str
    run: Callable[[], None]  # raises CheckFailed (or anything) when unhealthy


@dataclass(frozen=True)
class HealthAnswer:
    code: int
    text: str


def _ping() -> None:
    return None


def _log() -> None:
    log.debug("health check")


class HealthChecks:
    """The checks of one API server. `store` is the registry's store (None for a node's kubelet
    server, which has no etcd checks); `stopping()` says whether the server has begun to shut down."""

    def __init__(self, store, stopping: Callable[[], bool]):
        def etcd() -> None:
            try:
                store.get("namespaces", "", "default")
                store.count("namespaces")
            except errors.ApiError as error:
                raise CheckFailed(error.message) from None

        def shutdown() -> None:
            if stopping():
                raise CheckFailed("the API server is shutting down")

        store_checks = [HealthCheck("etcd", etcd)] if store is not None else []
        common = [HealthCheck("ping", _ping), HealthCheck("log", _log), *store_checks]
        readiness = [HealthCheck("etcd-readiness", etcd)] if store is not None else []
        self._checks = {
            "healthz": common,
            "livez": common,
            "readyz": [*common, *readiness, HealthCheck("informer-sync", _ping), HealthCheck("shutdown", shutdown)],
        }

    def names(self, endpoint: str) -> list[str]:
        return [check.name for check in self._checks[endpoint]]

    def answer(self, parts: list[str], query: dict) -> HealthAnswer:
        """The answer to GET /<endpoint>[/<check>] (`parts` are the path's segments)."""
        endpoint, check_name = parts[0], "/".join(parts[1:])
        checks = self._checks[endpoint]
        if check_name:
            check = next((check for check in checks if check.name == check_name), None)
            if check is None:
                raise errors.NotFound("the server could not find the requested resource")
            reason = _failure(check)
            if reason is None:
                return HealthAnswer(200, "ok")
            return HealthAnswer(500, f"internal server error: {reason}\n")
        excluded = [name for value in query.get("exclude", []) for name in value.split(",") if name]
        lines, failed = [], []
        for check in checks:
            if check.name in excluded:
                lines.append(f"[+]{check.name} excluded: ok")
                continue
            reason = _failure(check)
            if reason is None:
                lines.append(f"[+]{check.name} ok")
            else:
                log.warning("%s check %s failed: %s", endpoint, check.name, reason)
                lines.append(f"[-]{check.name} failed: reason withheld")
                failed.append(check.name)
        unknown = sorted(set(excluded) - {check.name for check in checks})
        if unknown:
            lines.append("warn: some health checks cannot be excluded: no matches for "
                         + ",".join(f'"{name}"' for name in unknown))
        if failed:
            return HealthAnswer(500, "\n".join(lines) + f"\n{endpoint} check failed\n")
        if "verbose" not in query:
            return HealthAnswer(200, "ok")
        return HealthAnswer(200, "\n".join(lines) + f"\n{endpoint} check passed\n")


def _failure(check: HealthCheck) -> str | None:
    try:
        check.run()
    except Exception as error:  # a check's own bug reads as that check failing, not as a 500 page
        return str(error) or type(error).__name__
    return None


def is_health_path(parts: list[str]) -> bool:
    return bool(parts) and parts[0] in ENDPOINTS
