"""Deployments: rolling out pod templates through ReplicaSets, as Kubernetes' deployment controller does.

`DeploymentController` is the controller the daemon runs; `rollout` holds the client-side
helpers behind `minikube-py rollout status|history|undo|restart`.
"""

from controllers.deployment.controller import DeploymentController

__all__ = ["DeploymentController"]
