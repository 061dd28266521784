"""`describe`: one object in kubectl's long form, with the events about it.

The layout follows kubectl's describers (`kubectl/pkg/describe/describe.go`): `Key:\\tvalue`
lines indented by level and aligned as one Go tabwriter block per run of lines, container
states with their Last State, probes as `http-get http://:8080/ delay=0s timeout=1s ...`, a
Deployment's `N desired | N updated | N total | N available | N unavailable`, and an `Events:`
table of the events whose involvedObject is this object's uid, oldest first.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from minikube_py import api
from minikube_py.cli import describe_networking, describe_storage, describe_workloads, tables
from minikube_py.cli.get import no_resources_message
from minikube_py.cli.context import Context, Subcommands, print_error, resolve_resource
from minikube_py.cli.describe_template import (  # noqa: F401 (describe_pod_template: imported from here by rollout)
    describe_containers, describe_pod_template, describe_tolerations, describe_volumes, write_pods_status)
from minikube_py.cli.describe_format import (  # noqa: F401 (DescribeWriter: imported from here by rollout, pods)
    DescribeWriter, describe_events, events_about, go_duration, rfc1123)
from minikube_py.cli.tables import NONE, age


def register(subcommands: Subcommands) -> None:
    describe = subcommands.add("describe", "show details of objects and the events about them",
                               namespaced=True, all_namespaces=True)
    describe.add_argument("type", metavar="TYPE[/NAME]",
                          help="any kind (TYPE/NAME too): kubectl's page for pods, deployments, replicasets, "
                               "statefulsets, daemonsets, jobs, cronjobs, horizontalpodautoscalers, "
                               "poddisruptionbudgets, priorityclasses, persistentvolumes, persistentvolumeclaims, "
                               "storageclasses, namespaces, nodes, services, endpoints, endpointslices, configmaps, "
                               "secrets and serviceaccounts; every field, as kubectl's generic page, for the others")
    describe.add_argument("names", nargs="*", metavar="NAME", help="objects to describe (default: all of the type)")
    describe.add_argument("-l", "--selector", help="describe the objects matching this label selector")
    describe.set_defaults(run=run_describe)


def controller_of(obj: dict) -> str | None:
    for reference in obj["metadata"].get("ownerReferences") or []:
        if reference.get("controller"):
            return f"{reference['kind']}/{reference['name']}"
    return None


def quality_of_service(pod: dict) -> str:
    """Kubernetes' QoS class: Guaranteed when every container's requests equal its cpu and memory limits."""
    containers = (pod.get("spec") or {}).get("containers") or []
    resources = [container.get("resources") or {} for container in containers]
    if not any(item.get("limits") or item.get("requests") for item in resources):
        return "BestEffort"
    for item in resources:
        limits, requests = item.get("limits") or {}, {**(item.get("limits") or {}), **(item.get("requests") or {})}
        if any(name not in limits or requests.get(name) != limits[name] for name in ("cpu", "memory")):
            return "Burstable"
    return "Guaranteed"


def describe_pod(context: Context, pod: dict, now: float) -> str:
    metadata, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    writer = DescribeWriter()
    writer.write(0, f"Name:\t{metadata['name']}")
    writer.write(0, f"Namespace:\t{metadata.get('namespace', '')}")
    if spec.get("priority") is not None:
        writer.write(0, f"Priority:\t{spec['priority']}")
    if spec.get("priorityClassName"):
        writer.write(0, f"Priority Class Name:\t{spec['priorityClassName']}")
    if spec.get("serviceAccountName"):
        writer.write(0, f"Service Account:\t{spec['serviceAccountName']}")
    node = spec.get("nodeName")
    writer.write(0, f"Node:\t{node + '/' + status.get('hostIP', '') if node else NONE}")
    if status.get("startTime"):
        writer.write(0, f"Start Time:\t{rfc1123(status['startTime'])}")
    writer.labels(0, "Labels", metadata.get("labels"))
    writer.annotations(0, "Annotations", metadata.get("annotations"))
    if metadata.get("deletionTimestamp"):
        remaining = api.times.parse_time(metadata["deletionTimestamp"]) - now
        writer.write(0, f"Status:\tTerminating (lasts {api.times.human_duration(remaining)})")
        writer.write(0, f"Termination Grace Period:\t{metadata.get('deletionGracePeriodSeconds', 0)}s")
    else:
        writer.write(0, f"Status:\t{status.get('phase', '')}")
    if status.get("reason"):
        writer.write(0, f"Reason:\t{status['reason']}")
    if status.get("message"):
        writer.write(0, f"Message:\t{status['message']}")
    writer.write(0, f"IP:\t{status.get('podIP', '')}")
    pod_ips = [item.get("ip") for item in status.get("podIPs") or []] or (
        [status["podIP"]] if status.get("podIP") else [])
    if pod_ips:
        writer.write(0, "IPs:")
        for ip in pod_ips:
            writer.write(1, f"IP:\t{ip}")
    else:
        writer.write(0, f"IPs:\t{NONE}")
    if controller_of(pod):
        writer.write(0, f"Controlled By:\t{controller_of(pod)}")
    if spec.get("initContainers"):
        describe_containers(writer, "Init Containers", spec["initContainers"],
                            status.get("initContainerStatuses"), template=False)
    describe_containers(writer, "Containers", spec.get("containers") or [], status.get("containerStatuses"),
                        template=False)
    if status.get("conditions"):
        writer.write(0, "Conditions:")
        writer.write(1, "Type\tStatus")
        for condition in status["conditions"]:
            writer.write(1, f"{condition.get('type')} \t{condition.get('status')} ")
    describe_volumes(writer, spec.get("volumes"), 0)
    writer.write(0, f"QoS Class:\t{quality_of_service(pod)}")
    writer.labels(0, "Node-Selectors", spec.get("nodeSelector"))
    describe_tolerations(writer, 0, spec.get("tolerations"))
    describe_events(writer, events_about(context, pod), now)
    return writer.render()


def owned_replica_sets(context: Context, deployment: dict) -> list[dict]:
    uid = deployment["metadata"].get("uid")
    items = context.transport.list("replicasets", namespace=deployment["metadata"]["namespace"]).get("items") or []
    return [replica_set for replica_set in items
            if any(reference.get("uid") == uid and reference.get("controller")
                   for reference in replica_set["metadata"].get("ownerReferences") or [])]


def replica_sets_text(replica_sets: list[dict]) -> str:
    parts = [f"{replica_set['metadata']['name']} ({(replica_set.get('status') or {}).get('replicas', 0)}/"
             f"{(replica_set.get('spec') or {}).get('replicas', 0)} replicas created)"
             for replica_set in replica_sets]
    return ", ".join(parts) or NONE


def describe_conditions(writer: DescribeWriter, conditions: list[dict] | None) -> None:
    if not conditions:
        return
    writer.write(0, "Conditions:")
    writer.write(1, "Type\tStatus\tReason")
    writer.write(1, "----\t------\t------")
    for condition in conditions:
        writer.write(1, f"{condition.get('type')} \t{condition.get('status')}\t{condition.get('reason', '')}")


def describe_deployment(context: Context, deployment: dict, now: float) -> str:
    metadata, spec, status = deployment["metadata"], deployment.get("spec") or {}, deployment.get("status") or {}
    writer = DescribeWriter()
    writer.write(0, f"Name:\t{metadata['name']}")
    writer.write(0, f"Namespace:\t{metadata.get('namespace', '')}")
    writer.write(0, f"CreationTimestamp:\t{rfc1123(metadata.get('creationTimestamp'))}")
    writer.labels(0, "Labels", metadata.get("labels"))
    writer.annotations(0, "Annotations", metadata.get("annotations"))
    writer.write(0, f"Selector:\t{tables.format_label_selector(spec.get('selector'))}")
    writer.write(0, f"Replicas:\t{spec.get('replicas', 0)} desired | {status.get('updatedReplicas', 0)} updated | "
                    f"{status.get('replicas', 0)} total | {status.get('availableReplicas', 0)} available | "
                    f"{status.get('unavailableReplicas', 0)} unavailable")
    strategy = spec.get("strategy") or {}
    writer.write(0, f"StrategyType:\t{strategy.get('type', '')}")
    writer.write(0, f"MinReadySeconds:\t{spec.get('minReadySeconds', 0)}")
    if strategy.get("rollingUpdate"):
        rolling = strategy["rollingUpdate"]
        writer.write(0, f"RollingUpdateStrategy:\t{rolling.get('maxUnavailable')} max unavailable, "
                        f"{rolling.get('maxSurge')} max surge")
    template = spec.get("template") or {}
    describe_pod_template(writer, template)
    describe_conditions(writer, status.get("conditions"))
    from minikube_py.client.deployments import find_new_replica_set  # on the models: imported when used

    replica_sets = owned_replica_sets(context, deployment)
    new_model = find_new_replica_set(api.Deployment.model_validate(deployment),
                                     [api.ReplicaSet.model_validate(item) for item in replica_sets])
    new = [item for item in replica_sets if new_model is not None and item["metadata"]["uid"] == new_model.metadata.uid]
    old = [replica_set for replica_set in replica_sets
           if replica_set not in new and (replica_set.get("spec") or {}).get("replicas", 0) != 0]
    writer.write(0, f"OldReplicaSets:\t{replica_sets_text(old)}")
    writer.write(0, f"NewReplicaSet:\t{replica_sets_text(new)}")
    describe_events(writer, events_about(context, deployment), now)
    return writer.render()


def describe_replica_set(context: Context, replica_set: dict, now: float) -> str:
    metadata, spec, status = replica_set["metadata"], replica_set.get("spec") or {}, replica_set.get("status") or {}
    writer = DescribeWriter()
    writer.write(0, f"Name:\t{metadata['name']}")
    writer.write(0, f"Namespace:\t{metadata.get('namespace', '')}")
    writer.write(0, f"Selector:\t{tables.format_label_selector(spec.get('selector'))}")
    writer.labels(0, "Labels", metadata.get("labels"))
    writer.annotations(0, "Annotations", metadata.get("annotations"))
    if controller_of(replica_set):
        writer.write(0, f"Controlled By:\t{controller_of(replica_set)}")
    writer.write(0, f"Replicas:\t{status.get('replicas', 0)} current / {spec.get('replicas', 0)} desired")
    write_pods_status(context, writer, replica_set)
    describe_pod_template(writer, spec.get("template") or {})
    describe_conditions(writer, status.get("conditions"))
    describe_events(writer, events_about(context, replica_set), now)
    return writer.render()


def describe_daemon_set(context: Context, daemon_set: dict, now: float) -> str:
    """kubectl's describeDaemonSet: selectors, labels, the node counts, pods, template, events."""
    metadata, spec, status = daemon_set["metadata"], daemon_set.get("spec") or {}, daemon_set.get("status") or {}
    template = spec.get("template") or {}
    writer = DescribeWriter()
    writer.write(0, f"Name:\t{metadata['name']}")
    # kubectl prints no Namespace line for a DaemonSet.
    writer.write(0, f"Selector:\t{tables.format_label_selector(spec.get('selector'))}")
    writer.write(0, f"Node-Selector:\t{tables.format_labels((template.get('spec') or {}).get('nodeSelector'))}")
    writer.labels(0, "Labels", metadata.get("labels"))
    writer.annotations(0, "Annotations", metadata.get("annotations"))
    for title, field in (("Desired Number of Nodes Scheduled", "desiredNumberScheduled"),
                         ("Current Number of Nodes Scheduled", "currentNumberScheduled"),
                         ("Number of Nodes Scheduled with Up-to-date Pods", "updatedNumberScheduled"),
                         ("Number of Nodes Scheduled with Available Pods", "numberAvailable"),
                         ("Number of Nodes Misscheduled", "numberMisscheduled")):
        # Not tab-aligned in kubectl either: these lines end the aligned block.
        writer.write(0, f"{title}: {status.get(field, 0)}")
    write_pods_status(context, writer, daemon_set)
    describe_pod_template(writer, template)
    describe_events(writer, events_about(context, daemon_set), now)
    return writer.render()


def describe_namespace(context: Context, namespace: dict, now: float) -> str:
    metadata = namespace["metadata"]
    writer = DescribeWriter()
    writer.write(0, f"Name:\t{metadata['name']}")
    writer.labels(0, "Labels", metadata.get("labels"))
    writer.annotations(0, "Annotations", metadata.get("annotations"))
    writer.write(0, f"Status:\t{(namespace.get('status') or {}).get('phase', '')}")
    writer.write(0, "")
    writer.write(0, "No resource quota.")
    writer.write(0, "")
    writer.write(0, "No LimitRange resource.")
    return writer.render()


def describe_node(context: Context, node: dict, now: float) -> str:
    metadata, spec, status = node["metadata"], node.get("spec") or {}, node.get("status") or {}
    writer = DescribeWriter()
    writer.write(0, f"Name:\t{metadata['name']}")
    writer.write(0, f"Roles:\t{tables.node_roles(node)}")
    writer.labels(0, "Labels", metadata.get("labels"))
    writer.annotations(0, "Annotations", metadata.get("annotations"))
    writer.write(0, f"CreationTimestamp:\t{rfc1123(metadata.get('creationTimestamp'))}")
    writer.write(0, f"Unschedulable:\t{'true' if spec.get('unschedulable') else 'false'}")
    writer.write(0, "Conditions:")
    writer.write(1, "Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage")
    writer.write(1, "----\t------\t-----------------\t------------------\t------\t-------")
    for condition in status.get("conditions") or []:
        writer.write(1, f"{condition.get('type')} \t{condition.get('status')} \t"
                        f"{rfc1123(condition.get('lastHeartbeatTime'))} \t"
                        f"{rfc1123(condition.get('lastTransitionTime'))} \t{condition.get('reason', '')} \t"
                        f"{condition.get('message', '')}")
    writer.write(0, "Addresses:")
    for address in status.get("addresses") or []:
        writer.write(1, f"{address.get('type')}:\t{address.get('address')}")
    for field, label in (("capacity", "Capacity"), ("allocatable", "Allocatable")):
        if status.get(field):
            writer.write(0, f"{label}:")
            for resource_name, quantity in sorted(status[field].items()):
                writer.write(1, f"{resource_name}:\t{quantity}")
    info = status.get("nodeInfo") or {}
    if info:
        writer.write(0, "System Info:")
        for key, label in (("machineID", "Machine ID"), ("bootID", "Boot ID"), ("kernelVersion", "Kernel Version"),
                           ("osImage", "OS Image"), ("operatingSystem", "Operating System"),
                           ("architecture", "Architecture"), ("containerRuntimeVersion", "Container Runtime Version"),
                           ("kubeletVersion", "Kubelet Version")):
            if key in info:
                writer.write(1, f"{label}:\t{info[key]}")
    writer.write(0, f"PodCIDR:\t{spec.get('podCIDR', '')}")
    pods = [pod for pod in context.transport.list("pods").get("items") or []
            if (pod.get("spec") or {}).get("nodeName") == metadata["name"]
            and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
    writer.write(0, f"Non-terminated Pods:\t({len(pods)} in total)")
    if pods:
        writer.write(1, "Namespace\tName\tAge")
        writer.write(1, "---------\t----\t---")
        for pod in sorted(pods, key=lambda item: (item["metadata"].get("namespace"), item["metadata"]["name"])):
            writer.write(1, f"{pod['metadata'].get('namespace')}\t{pod['metadata']['name']}\t"
                            f"{age(pod['metadata'].get('creationTimestamp'), now)}")
    describe_events(writer, events_about(context, node), now)
    return writer.render()


def describe_job(context: Context, job: dict, now: float) -> str:
    """kubectl's JobDescriber: parallelism and completions, times, pod counts, the template."""
    metadata, spec, status = job["metadata"], job.get("spec") or {}, job.get("status") or {}
    writer = DescribeWriter()
    writer.write(0, f"Name:\t{metadata['name']}")
    writer.write(0, f"Namespace:\t{metadata.get('namespace', '')}")
    writer.write(0, f"Selector:\t{tables.format_label_selector(spec.get('selector'))}")
    writer.labels(0, "Labels", metadata.get("labels"))
    writer.annotations(0, "Annotations", metadata.get("annotations"))
    if controller_of(job):
        writer.write(0, f"Controlled By:\t{controller_of(job)}")
    writer.write(0, f"Parallelism:\t{spec.get('parallelism', 0)}")
    writer.write(0, f"Completions:\t{spec['completions'] if spec.get('completions') is not None else '<unset>'}")
    writer.write(0, f"Completion Mode:\t{spec.get('completionMode', 'NonIndexed')}")
    writer.write(0, f"Suspend:\t{'true' if spec.get('suspend') else 'false'}")
    writer.write(0, f"Backoff Limit:\t{spec.get('backoffLimit', 6)}")
    if spec.get("ttlSecondsAfterFinished") is not None:
        writer.write(0, f"TTL Seconds After Finished:\t{spec['ttlSecondsAfterFinished']}")
    if status.get("startTime"):
        writer.write(0, f"Start Time:\t{rfc1123(status['startTime'])}")
    if status.get("completionTime"):
        writer.write(0, f"Completed At:\t{rfc1123(status['completionTime'])}")
        elapsed = api.times.parse_time(status["completionTime"]) - api.times.parse_time(status["startTime"])
        writer.write(0, f"Duration:\t{api.times.human_duration(elapsed)}")
    if spec.get("activeDeadlineSeconds") is not None:
        writer.write(0, f"Active Deadline Seconds:\t{spec['activeDeadlineSeconds']}s")
    writer.write(0, f"Pods Statuses:\t{status.get('active', 0)} Active ({status.get('ready', 0)} Ready) / "
                    f"{status.get('succeeded', 0)} Succeeded / {status.get('failed', 0)} Failed")
    if spec.get("completionMode") == "Indexed":
        writer.write(0, f"Completed Indexes:\t{status.get('completedIndexes') or NONE}")
    describe_pod_template(writer, spec.get("template") or {})  # kubectl 1.32 lists no Job conditions here
    describe_events(writer, events_about(context, job), now)
    return writer.render()


def describe_cron_job(context: Context, cron_job: dict, now: float) -> str:
    """kubectl's CronJobDescriber: the schedule and policies, the job template, the active Jobs."""
    metadata, spec, status = cron_job["metadata"], cron_job.get("spec") or {}, cron_job.get("status") or {}
    job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    writer = DescribeWriter()
    writer.write(0, f"Name:\t{metadata['name']}")
    writer.write(0, f"Namespace:\t{metadata.get('namespace', '')}")
    writer.labels(0, "Labels", metadata.get("labels"))
    writer.annotations(0, "Annotations", metadata.get("annotations"))
    writer.write(0, f"Schedule:\t{spec.get('schedule', '')}")
    if spec.get("timeZone"):
        writer.write(0, f"Time Zone:\t{spec['timeZone']}")
    writer.write(0, f"Concurrency Policy:\t{spec.get('concurrencyPolicy', 'Allow')}")
    writer.write(0, f"Suspend:\t{'True' if spec.get('suspend') else 'False'}")
    writer.write(0, f"Successful Job History Limit:\t{spec.get('successfulJobsHistoryLimit', 3)}")
    writer.write(0, f"Failed Job History Limit:\t{spec.get('failedJobsHistoryLimit', 1)}")
    deadline = spec.get("startingDeadlineSeconds")
    writer.write(0, f"Starting Deadline Seconds:\t{'<unset>' if deadline is None else f'{deadline}s'}")
    writer.write(0, f"Selector:\t{tables.format_label_selector(job_spec.get('selector')) if job_spec.get('selector') else '<unset>'}")
    for label, field in (("Parallelism", "parallelism"), ("Completions", "completions")):
        writer.write(0, f"{label}:\t{job_spec[field] if job_spec.get(field) is not None else '<unset>'}")
    describe_pod_template(writer, job_spec.get("template") or {})
    writer.write(0, f"Last Schedule Time:\t{rfc1123(status.get('lastScheduleTime')) if status.get('lastScheduleTime') else '<unset>'}")
    active = ", ".join(reference.get("name", "") for reference in status.get("active") or [])
    writer.write(0, f"Active Jobs:\t{active or NONE}")
    describe_events(writer, events_about(context, cron_job), now)
    return writer.render()


Describer = Callable[[Context, dict, float], str]

DESCRIBERS: dict[str, Describer] = {
    "pods": describe_pod,
    "deployments": describe_deployment,
    "replicasets": describe_replica_set,
    "daemonsets": describe_daemon_set,
    "namespaces": describe_namespace,
    "nodes": describe_node,
    "jobs": describe_job,
    "cronjobs": describe_cron_job,
    **describe_networking.DESCRIBERS,
    **describe_storage.DESCRIBERS,
    **describe_workloads.DESCRIBERS,
}


def describer_for(plural: str) -> Describer:
    """The kind's own describer, else kubectl's generic one (every field of the object)."""
    return DESCRIBERS.get(plural, describe_workloads.describe_generic)


def run_describe(args: argparse.Namespace, context: Context) -> int:
    type_name, slash, name = args.type.partition("/")
    info = resolve_resource(type_name)
    names = ([name] if slash else []) + list(args.names)
    describer = describer_for(info.plural)
    namespace = context.namespace_for(info)
    if names:
        objects = []
        for object_name in names:
            objects.append(context.transport.get(info.plural, namespace, object_name))
    else:
        objects = context.transport.list(info.plural, namespace=namespace,
                                         label_selector=args.selector).get("items") or []
        if not objects:
            print_error(no_resources_message(context, [info]))
            return 0
    now = context.now()
    print("\n\n".join(describer(context, obj, now) for obj in objects))
    return 0
