"""Deployments: rolling out pod templates through ReplicaSets, as Kubernetes' deployment controller does.

`DeploymentController` is the controller the daemon runs; the client-side helpers behind
`minikube-py rollout status|history|undo|restart` are in `minikube_py/client/rollout.py`.
"""

from controllers.deployment.controller import DeploymentController

__all__ = ["DeploymentController"]
