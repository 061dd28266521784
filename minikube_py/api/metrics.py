"""`metrics.k8s.io/v1beta1` PodMetrics and NodeMetrics: what metrics-server serves.

`kubectl top` and the HorizontalPodAutoscaler read resource usage through this API. The objects
are not stored: each node's agent measures its pods' cgroups (agent/resource_metrics.py) and the
API server assembles these documents when asked (apiserver/resource_metrics.py). Usage is a rate
over a window, as metrics-server reports it: `timestamp` is the end of the window, `window` its
length as a Go duration (`15s`), CPU in the quantity a nanocore count canonicalises to
(`12345678n`, `250m`) and memory (the working set) in binary units (`6912Ki`).
"""

from __future__ import annotations

from pydantic import Field

from minikube_py.api.meta import ObjectMeta, WireModel

GROUP_VERSION = "metrics.k8s.io/v1beta1"


class ContainerMetrics(WireModel):
    name: str
    usage: dict[str, str] = Field(default_factory=dict)


class PodMetrics(WireModel):
    api_version: str = GROUP_VERSION
    kind: str = "PodMetrics"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    timestamp: str = ""
    window: str = ""
    containers: list[ContainerMetrics] = Field(default_factory=list)


class NodeMetrics(WireModel):
    api_version: str = GROUP_VERSION
    kind: str = "NodeMetrics"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    timestamp: str = ""
    window: str = ""
    usage: dict[str, str] = Field(default_factory=dict)


def format_nanocores(nanocores: int) -> str:
    """A CPU rate as resource.Quantity prints `NewScaledQuantity(n, Nano)`: the largest exact
    suffix, so 2000000n is `2m` and 1500000000n is `1500m`."""
    nanocores = max(0, int(nanocores))
    if nanocores % 10**9 == 0:
        return str(nanocores // 10**9)
    if nanocores % 10**6 == 0:
        return f"{nanocores // 10**6}m"
    if nanocores % 10**3 == 0:
        return f"{nanocores // 10**3}u"
    return f"{nanocores}n"


BINARY_SUFFIXES = (("Ei", 1 << 60), ("Pi", 1 << 50), ("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10))


def format_binary_bytes(count: int) -> str:
    """Bytes as a BinarySI quantity prints: the largest exact binary suffix (`6912Ki`, `64Mi`)."""
    count = max(0, int(count))
    for suffix, size in BINARY_SUFFIXES:
        if count and count % size == 0:
            return f"{count // size}{suffix}"
    return str(count)


def format_go_duration(seconds: float) -> str:
    """A duration as Go's time.Duration.String() writes it: `15s`, `1.5s`, `1m30s`, `250ms`."""
    nanoseconds = round(seconds * 1e9)
    if nanoseconds == 0:
        return "0s"
    if nanoseconds < 10**9:
        for unit, size in (("ms", 10**6), ("µs", 10**3)):
            if nanoseconds >= size:
                return f"{_trimmed(nanoseconds / size)}{unit}"
        return f"{nanoseconds}ns"
    hours, rest = divmod(nanoseconds, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    text = f"{_trimmed(rest / 1e9)}s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    return f"{minutes}m{text}" if minutes else text


def _trimmed(value: float) -> str:
    return f"{value:.9f}".rstrip("0").rstrip(".")
