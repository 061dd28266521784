"""What the sync steps (`sync`, `rolling`, `recreate`, `rollback`, `progress`) need from the controller.

The steps take this protocol rather than `DeploymentController`, so they import nothing from the
controller module that calls them: `controller` depends on the steps, never the other way round.
"""

from __future__ import annotations

from typing import Protocol

from minikube_py.client.api import ApiObject, Client
from minikube_py.clock import Clock


class SyncContext(Protocol):
    """The controller as the steps see it: its API client, its clock and its event recorder."""

    @property
    def client(self) -> Client: ...

    @property
    def clock(self) -> Clock: ...

    def event(self, obj: ApiObject, event_type: str, reason: str, message: str) -> None: ...
