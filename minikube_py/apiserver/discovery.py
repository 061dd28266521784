"""Discovery: the documents that tell a client what this server serves.

`/version`, `/api`, `/apis`, `/api/v1` and `/apis/GROUP/VERSION` (APIResourceList with the
subresources we serve); the OpenAPI documents are `openapi.py`'s. kubectl reads these before
anything else, to map `kubectl get deploy` to a path. Everything is
computed from `api.RESOURCES`, so a new kind appears here by being registered there.
"""

from __future__ import annotations

from minikube_py import __version__, api
from minikube_py.apiserver import resource_metrics

# Kinds with a `/scale` subresource (autoscaling/v1 Scale from spec.replicas and spec.selector),
# which `kubectl scale` and the HorizontalPodAutoscaler write.
SCALABLE_RESOURCES = ("replicasets", "deployments", "statefulsets")

KUBERNETES_VERSION = {"major": "1", "minor": "32"}
OBJECT_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
# Kubernetes serves no deletecollection on namespaces.
NAMESPACE_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
# Create-only resources that are answered, never stored (apiserver/authorization_review.py).
REVIEW_RESOURCES = {
    "authorization.k8s.io/v1": [{"name": "selfsubjectaccessreviews", "singularName": "selfsubjectaccessreview",
                                 "namespaced": False, "kind": "SelfSubjectAccessReview", "verbs": ["create"]}],
    "authentication.k8s.io/v1": [{"name": "selfsubjectreviews", "singularName": "selfsubjectreview",
                                  "namespaced": False, "kind": "SelfSubjectReview", "verbs": ["create"]}],
}


def version_info() -> dict:
    return {**KUBERNETES_VERSION, "gitVersion": f"v1.32.0-minikube-py-{__version__}", "gitCommit": "",
            "gitTreeState": "clean", "buildDate": "1970-01-01T00:00:00Z", "goVersion": "python",
            "compiler": "cpython", "platform": "linux/amd64"}


def group_versions() -> dict[str, list]:
    """Each served group/version and the resources served at it (a resource served at several
    versions, such as HorizontalPodAutoscaler, is under each: the storage version first)."""
    by_version: dict[str, list] = {}
    for info in api.RESOURCES.values():
        for served in info.versions:
            by_version.setdefault(served.api_version, []).append(info)
    return by_version


def api_resource_list(group_version: str) -> dict:
    """The APIResourceList of one group version, with the subresources we serve."""
    resources = [dict(entry) for entry in REVIEW_RESOURCES.get(group_version, [])]
    for info in group_versions().get(group_version, []):
        verbs = NAMESPACE_VERBS if info.plural == "namespaces" else OBJECT_VERBS
        entry = {"name": info.plural, "singularName": info.singular, "namespaced": info.namespaced,
                 "kind": info.kind, "verbs": verbs, "shortNames": list(info.short_names)}
        if info.plural in ("pods", "replicasets", "deployments", "services", "jobs", "cronjobs",
                           "horizontalpodautoscalers", "statefulsets", "daemonsets"):
            entry["categories"] = ["all"]
        resources.append(entry)
        if info.plural in ("pods", "replicasets", "deployments", "services", "namespaces", "nodes", "jobs",
                           "cronjobs", "horizontalpodautoscalers", "statefulsets", "daemonsets", "poddisruptionbudgets",
                           "persistentvolumes", "persistentvolumeclaims"):
            resources.append({"name": f"{info.plural}/status", "singularName": "", "namespaced": info.namespaced,
                              "kind": info.kind, "verbs": ["get", "patch", "update"]})
        if info.plural in SCALABLE_RESOURCES:
            resources.append({"name": f"{info.plural}/scale", "singularName": "", "namespaced": True,
                              "group": "autoscaling", "version": "v1", "kind": "Scale",
                              "verbs": ["get", "patch", "update"]})
        if info.plural == "pods":
            resources += [
                {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
                {"name": "pods/exec", "singularName": "", "namespaced": True, "kind": "PodExecOptions",
                 "verbs": ["create", "get"]},
                {"name": "pods/binding", "singularName": "", "namespaced": True, "kind": "Binding",
                 "verbs": ["create"]},
                {"name": "pods/eviction", "singularName": "", "namespaced": True, "group": "policy",
                 "version": "v1", "kind": "Eviction", "verbs": ["create"]},
                {"name": "pods/inspect", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
            ]
        if info.plural == "serviceaccounts":
            resources.append({"name": "serviceaccounts/token", "singularName": "", "namespaced": True,
                              "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest",
                              "verbs": ["create"]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}


def api_group_list() -> dict:
    groups: dict[str, dict] = {}
    for group_version in [*group_versions(), *REVIEW_RESOURCES]:
        if "/" in group_version:
            name, version = group_version.split("/")
            entry = {"groupVersion": group_version, "version": version}
            # The first version met is the storage version: the preferred one (autoscaling: v2, then v1).
            group = groups.setdefault(name, {"name": name, "versions": [], "preferredVersion": entry})
            group["versions"].append(entry)
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [*groups.values(), resource_metrics.api_group()]}


def api_versions() -> dict:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}
