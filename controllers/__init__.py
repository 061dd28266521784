"""The control plane's reconcilers: ReplicaSet, Deployment, Job, CronJob, garbage collector, scheduler.

Each is a `minikube_py.client.controller.Controller` reading shared informer caches and writing
through the API client, so they run the same in the daemon (in-process client) and against a
remote API server. `build_controllers` makes the ones in this package with one set of shared
caches per client; the daemon runs each (`run()`) and stops each (`stop()`).
"""

from __future__ import annotations


from minikube_py.client.api import Client
from minikube_py.client.controller import Controller
from minikube_py.client.informer import SharedInformers, shared_informers
from minikube_py.clock import Clock


def build_controllers(client: Client, clock: Clock | None = None, informers: SharedInformers | None = None,
                      workers: int = 2) -> list[Controller[str]]:
    """The ReplicaSet controller, the garbage collector, the scheduler, the taint eviction and
    disruption controllers, the service account, endpoints, Job, TTL-after-finished, CronJob,
    PersistentVolume, PVC/PV protection, StatefulSet and DaemonSet controllers, sharing caches.

    The Deployment controller lives in `controllers.deployment` and is added by the caller.
    """
    from controllers.cronjob import CronJobController
    from controllers.daemonset import DaemonSetController
    from controllers.disruption import DisruptionController
    from controllers.endpoints import EndpointsController
    from controllers.endpointslice import EndpointSliceController
    from controllers.garbagecollector import GarbageCollector
    from controllers.job import JobController
    from controllers.persistentvolume import PersistentVolumeController
    from controllers.pvcprotection import PVCProtectionController
    from controllers.pvprotection import PVProtectionController
    from controllers.replicaset import ReplicaSetController
    from controllers.scheduler import Scheduler
    from controllers.serviceaccount import ServiceAccountController
    from controllers.statefulset import StatefulSetController
    from controllers.tainteviction import TaintEvictionController
    from controllers.ttlafterfinished import TTLAfterFinishedController

    informers = informers or shared_informers(client)
    return [
        ReplicaSetController(client, clock, informers, workers=workers),
        GarbageCollector(client, clock, informers, workers=workers),
        Scheduler(client, clock, informers),
        TaintEvictionController(client, clock, informers),
        DisruptionController(client, clock, informers),
        ServiceAccountController(client, clock, informers),
        EndpointSliceController(client, clock, informers, workers=workers),
        EndpointsController(client, clock, informers, workers=workers),
        JobController(client, clock, informers, workers=workers),
        TTLAfterFinishedController(client, clock, informers),
        CronJobController(client, clock, informers),
        PersistentVolumeController(client, clock, informers),
        PVCProtectionController(client, clock, informers),
        PVProtectionController(client, clock, informers),
        StatefulSetController(client, clock, informers, workers=workers),
        DaemonSetController(client, clock, informers, workers=workers),
    ]
