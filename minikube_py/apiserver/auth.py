"""Who is asking, and may they: authentication and authorization for the API's two doors.

The unix socket is root's alone (mode 0600), so whoever reaches it is the local admin and shows
no credential. On the TCP listener every request must show one: a client certificate signed by
the cluster CA (the user is its CN, the groups its O entries, as Kubernetes reads them) or a
bearer token from the cluster's static token file or a ServiceAccount's signed token
(serviceaccount_tokens.py). Anything else is 401 as a Status.

Authorization follows design.md section 10 and starts small: a member of `system:masters` may do
everything; a node (`system:node:NAME`, group `system:nodes`) may touch only its own Node, its
own Lease, the pods bound to it (and their status), its own local-path PersistentVolumes, and
write Events; everyone else may do nothing (403). RBAC objects can later decide the same question on the same seam.
"""

from __future__ import annotations

import hmac
import os
import ssl
from dataclasses import dataclass
from typing import Any, Callable

from minikube_py.api import errors
from minikube_py.apiserver import certificates
from minikube_py.apiserver.routing import Route, text
from minikube_py.apiserver.serviceaccount_tokens import ServiceAccountUser

NODE_PREFIX = "system:node:"


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()

    @property
    def is_admin(self) -> bool:
        return "system:masters" in self.groups

    @property
    def node_name(self) -> str | None:
        if "system:nodes" in self.groups and self.name.startswith(NODE_PREFIX):
            return self.name[len(NODE_PREFIX):]
        return None


LOCAL_ADMIN = User("admin", certificates.ADMIN_GROUPS)
# Who a TCP request without any credential is: it may read the health endpoints and nothing else.
ANONYMOUS = User("system:anonymous", ("system:unauthenticated",))


class TokenAuthenticator:
    """Bearer tokens from the static token file, then ServiceAccount tokens (signed JWTs, checked by
    `service_accounts`: token -> user or None). The file is read again when it changes: `node add`
    writes a token for the new node, `node rm` takes it away."""

    def __init__(self, tokens: list[certificates.Token],
                 service_accounts: Callable[[str], ServiceAccountUser | None] | None = None,
                 path: str | None = None):
        self._tokens = [(token.token.encode(), User(token.user, token.groups)) for token in tokens]
        self._service_accounts = service_accounts
        self._path = path
        self._stamp = self._file_stamp()

    @classmethod
    def from_file(cls, path: str, service_accounts: Callable[[str], ServiceAccountUser | None] | None = None,
                  ) -> "TokenAuthenticator":
        return cls(certificates.read_tokens(path), service_accounts, path)

    def _file_stamp(self) -> tuple[int, int, int] | None:
        if self._path is None:
            return None
        try:
            stat = os.stat(self._path)
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size, stat.st_ino

    def _reload_if_changed(self) -> None:
        stamp = self._file_stamp()
        if stamp != self._stamp and self._path is not None:
            self._tokens = [(token.token.encode(), User(token.user, token.groups))
                            for token in certificates.read_tokens(self._path)]
            self._stamp = stamp

    def user_for(self, presented: str) -> User | None:
        self._reload_if_changed()
        given = presented.encode()
        found = None
        for secret, user in self._tokens:  # compare with every token, in constant time each
            if hmac.compare_digest(secret, given):
                found = user
        if found is None and self._service_accounts is not None and presented.count(".") == 2:
            account = self._service_accounts(presented)
            if account is not None:
                found = User(account.name, account.groups)
        return found


def user_from_certificate(peer: dict | None) -> User | None:
    """The user of a client certificate the TLS layer already verified against the cluster CA."""
    if not peer:
        return None
    names: dict[str, list[str]] = {}
    for rdn in peer.get("subject", ()):
        for key, value in rdn:
            names.setdefault(key, []).append(value)
    common_names = names.get("commonName") or []
    if not common_names:
        return None
    return User(common_names[0], tuple(names.get("organizationName") or ()) + ("system:authenticated",))


def authenticate(authorization: str | None, connection, tokens: TokenAuthenticator) -> User:
    """The user a TCP request proves it is; raises Unauthorized."""
    if isinstance(connection, ssl.SSLSocket):
        user = user_from_certificate(connection.getpeercert())
        if user is not None:
            return user
    scheme, _, credential = (authorization or "").strip().partition(" ")
    if scheme.lower() == "bearer" and credential.strip():
        user = tokens.user_for(credential.strip())
        if user is not None:
            return user
    raise errors.Unauthorized("Unauthorized")


# What a node's agent, service proxy, cluster DNS and route controller read (list and watch): the
# objects its pods' containers and volumes name (claims and their volumes too), ServiceAccounts
# (tokens, image pull secrets), Services and their endpoints, and the Nodes (routes to their pod CIDRs). Kubernetes' Node
# authorizer narrows Secrets and ConfigMaps to those of the node's own pods; here a node may read all.
NODE_READABLE = {"namespaces", "configmaps", "secrets", "serviceaccounts", "services", "endpointslices",
                 "endpoints", "nodes", "persistentvolumeclaims", "persistentvolumes", "storageclasses"}


def allowed(user: User, method: str, route: Route, query: dict, registry) -> bool:
    """Whether `user` may make this request (also what a SelfSubjectAccessReview answers)."""
    if user.is_admin:
        return True
    node = user.node_name
    return node is not None and _node_may(node, method, route, query, registry)


def request_verb(method: str, route: Route, query: dict) -> str:
    """The Kubernetes verb of a request on a resource: get, list, watch, create, ..., deletecollection."""
    verb = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, method)
    if method == "GET" and route.name is None:
        verb = "watch" if text(query, "watch") in ("1", "true") else "list"
    if method == "DELETE" and route.name is None:
        verb = "deletecollection"
    return verb


PUBLIC_PATHS = ("healthz", "livez", "readyz")


def authorize_path(user: User, path: str) -> None:
    """Raise Forbidden unless `user` may GET this non-resource path: the health endpoints are
    everyone's (kube-apiserver's system:public-info-viewer), the rest (`/metrics`) the admin's."""
    first = path.strip("/").split("/")[0]
    if first in PUBLIC_PATHS or user.is_admin:
        return
    raise errors.Forbidden(f'forbidden: User "{user.name}" cannot get path "{path}"')


def authorize(user: User, method: str, route: Route, query: dict, registry) -> None:
    """Raise Forbidden unless `user` may make this request."""
    if allowed(user, method, route, query, registry):
        return
    verb = request_verb(method, route, query)
    resource = route.info.plural + (f"/{route.subresource}" if route.subresource else "")
    group = route.info.api_version.rpartition("/")[0]
    where = f' in the namespace "{route.namespace}"' if route.namespace else " at the cluster scope"
    raise errors.Forbidden(
        f'{resource}{"." + group if group else ""}{f" {route.name!r}" if route.name else ""} is forbidden: '
        f'User "{user.name}" cannot {verb} resource "{resource}" in API group "{group}"{where}',
        {"name": route.name or "", "group": group, "kind": route.info.plural})


STREAMS = ("exec", "attach", "portforward")

# The annotation naming the node a local-path volume lives on (agent/localpath.py's NODE_ANNOTATION).
LOCAL_PATH_NODE_ANNOTATION = "local.path.provisioner/selected-node"


def _volume_node(registry, name: str) -> str | None:
    try:
        volume = registry.get("persistentvolumes", None, name)
    except errors.NotFound:
        return None
    return ((volume.get("metadata") or {}).get("annotations") or {}).get(LOCAL_PATH_NODE_ANNOTATION)


def check_node_object(user: User, method: str, route: Route, body: Any) -> None:
    """A node's writes the authorizer lets through by kind, narrowed by what they carry (as
    Kubernetes' NodeRestriction admission does): a PersistentVolume a node creates must be one of
    its own local-path volumes, annotated with its name and reachable only from it."""
    node = user.node_name
    if node is None or method != "POST" or route.info.plural != "persistentvolumes" or user.is_admin:
        return
    document = body if isinstance(body, dict) else {}
    annotations = (document.get("metadata") or {}).get("annotations") or {}
    terms = (((document.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {}).get(
        "nodeSelectorTerms") or []
    pinned = bool(terms) and all(
        any(expression.get("key") == "kubernetes.io/hostname" and expression.get("operator") == "In"
            and expression.get("values") == [node] for expression in (term.get("matchExpressions") or []))
        for term in terms)
    if annotations.get(LOCAL_PATH_NODE_ANNOTATION) != node or not pinned:
        raise errors.Forbidden(f'persistentvolumes is forbidden: node "{node}" may create only its own local-path '
                               f'volumes: metadata.annotations["{LOCAL_PATH_NODE_ANNOTATION}"] must be "{node}" and '
                               f'spec.nodeAffinity must require kubernetes.io/hostname In [{node}]')


def _node_may(node: str, method: str, route: Route, query: dict, registry) -> bool:
    resource = route.info.plural
    if resource == "nodes":
        return route.name == node or (route.name is None and method in ("POST", "GET"))
    if resource == "serviceaccounts" and route.subresource == "token":
        return method == "POST"  # tokens for its pods' projected volumes (bound to the pod by the API)
    if resource == "leases":
        return route.namespace == "kube-node-lease" and (route.name == node or method == "POST")
    if resource == "events":
        return method in ("POST", "PATCH", "PUT")  # kubelet's recorder creates and updates its Events
    if resource == "persistentvolumes" and method in ("POST", "DELETE"):
        # The node's local-path provisioner makes and removes the volumes of its own pods
        # (agent/localpath.py); `check_node_object` narrows what it may create.
        return method == "POST" or _volume_node(registry, route.name or "") == node
    if resource in NODE_READABLE:
        return method == "GET"
    if resource == "pods":
        if route.name is None:
            return method == "GET" and text(query, "fieldSelector") == f"spec.nodeName={node}"
        try:
            pod = registry.get("pods", route.namespace, route.name)
        except errors.NotFound:
            return False
        # Streams into a pod (exec, attach, port-forward) are the admin's alone, even on GET.
        return (pod.get("spec") or {}).get("nodeName") == node and route.subresource not in STREAMS and (
            method == "GET" or route.subresource == "status" or method == "DELETE")
    return False
