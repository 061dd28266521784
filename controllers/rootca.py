"""The root CA publisher: every active namespace has a `kube-root-ca.crt` ConfigMap.

As kube-controller-manager's root-ca-cert-publisher: the ConfigMap holds the cluster CA under the
key `ca.crt`, so the default `kube-api-access-*` volume of every pod can project it next to the
pod's token (a client in the pod trusts the API server with it). A namespace that appears, or whose
ConfigMap is deleted or edited, gets it (back). Keys are namespace names; `sync` compares the
cached ConfigMap with the CA and creates or replaces it.
"""

from __future__ import annotations

from typing import Any

from minikube_py.api import errors
from minikube_py.api.configuration import ConfigMap
from minikube_py.api.meta import ObjectMeta
from minikube_py.client.controller import Controller
from minikube_py.client.informer import SharedInformers, shared_informers
from minikube_py.clock import Clock

COMPONENT = "root-ca-cert-publisher"
ROOT_CA_CONFIG_MAP = "kube-root-ca.crt"
ROOT_CA_KEY = "ca.crt"
# kube-controller-manager marks the ConfigMap with the CA it came from; the same annotation here.
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
               "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
               "distributions of Kubernetes clusters.")


class RootCaPublisher(Controller[str]):
    """Keeps `kube-root-ca.crt` in every namespace; keys are namespace names."""

    def __init__(self, client: Any, ca_pem: str, clock: Clock | None = None, informers: SharedInformers | None = None):
        super().__init__(COMPONENT, clock, workers=1)
        self.client = client
        self.ca_pem = ca_pem
        informers = informers or shared_informers(client)
        self.namespaces = self.watch(informers.informer("namespaces"),
                                     on_add=lambda namespace: self.enqueue(namespace.metadata.name),
                                     on_update=lambda old, new: self.enqueue(new.metadata.name))
        self.config_maps = self.watch(informers.informer("configmaps"),
                                      on_update=lambda old, new: self._config_map_changed(new),
                                      on_delete=self._config_map_changed)

    def _config_map_changed(self, config_map: Any) -> None:
        if config_map.metadata.name == ROOT_CA_CONFIG_MAP:
            self.enqueue(config_map.metadata.namespace)

    def sync(self, key: Any) -> None:
        namespace = self.namespaces.get(key)
        if namespace is None or namespace.metadata.deletion_timestamp is not None:
            return None
        current = self.config_maps.get(f"{key}/{ROOT_CA_CONFIG_MAP}")
        if current is not None and (current.data or {}).get(ROOT_CA_KEY) == self.ca_pem:
            return None
        try:
            if current is None:
                self.client.create(ConfigMap(
                    metadata=ObjectMeta(name=ROOT_CA_CONFIG_MAP, namespace=key,
                                        annotations={DESCRIPTION_ANNOTATION: DESCRIPTION}),
                    data={ROOT_CA_KEY: self.ca_pem}))
            else:
                updated = current.model_copy(deep=True)
                updated.data = {ROOT_CA_KEY: self.ca_pem}
                self.client.replace(updated)
        except errors.AlreadyExists:
            pass  # the cache is behind; the next event brings it
        except errors.ApiError as error:
            if error.code == 403:
                return None  # the namespace started terminating meanwhile
            raise
        return None
