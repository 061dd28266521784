"""The service account controller: every active namespace has a `default` ServiceAccount.

As kube-controller-manager's serviceaccounts-controller: a namespace that appears, or whose
`default` ServiceAccount is deleted, gets one (again). Keys are namespace names; `sync` reads the
namespace and its ServiceAccounts from the caches and creates what is missing. A namespace being
deleted gets nothing: its contents are on their way out.
"""

from __future__ import annotations

from typing import Any

from minikube_py.api import errors
from minikube_py.api.configuration import DEFAULT_SERVICE_ACCOUNT, ServiceAccount
from minikube_py.api.meta import ObjectMeta
from minikube_py.client.controller import Controller
from minikube_py.client.informer import SharedInformers, shared_informers
from minikube_py.clock import Clock

COMPONENT = "serviceaccount-controller"


class ServiceAccountController(Controller[str]):
    """Keeps `default` ServiceAccounts; keys are namespace names."""

    def __init__(self, client: Any, clock: Clock | None = None, informers: SharedInformers | None = None):
        super().__init__(COMPONENT, clock, workers=1)
        self.client = client
        informers = informers or shared_informers(client)
        self.namespaces = self.watch(informers.informer("namespaces"),
                                     on_add=self._namespace_changed,
                                     on_update=lambda old, new: self._namespace_changed(new))
        self.service_accounts = self.watch(informers.informer("serviceaccounts"),
                                           on_delete=self._service_account_deleted)

    def _namespace_changed(self, namespace: Any) -> None:
        self.enqueue(namespace.metadata.name)

    def _service_account_deleted(self, service_account: Any) -> None:
        if service_account.metadata.name == DEFAULT_SERVICE_ACCOUNT:
            self.enqueue(service_account.metadata.namespace)

    def sync(self, key: Any) -> None:
        namespace = self.namespaces.get(key)
        if namespace is None or namespace.metadata.deletion_timestamp is not None:
            return None
        if self.service_accounts.get(f"{key}/{DEFAULT_SERVICE_ACCOUNT}") is not None:
            return None
        try:
            self.client.create(ServiceAccount(metadata=ObjectMeta(name=DEFAULT_SERVICE_ACCOUNT, namespace=key)))
        except errors.AlreadyExists:
            pass  # the cache is behind; it is there
        except errors.ApiError as error:
            if error.code == 403:
                return None  # the namespace started terminating meanwhile
            raise
        return None
