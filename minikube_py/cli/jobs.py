"""`create job`: a Job from an image and a command, or a one-off run of a CronJob's template.

As kubectl's `create job`: `create job NAME --image=IMAGE [-- COMMAND [ARGS...]]` makes a Job
whose one container (named after the Job) runs COMMAND with `restartPolicy: Never`;
`create job NAME --from=cronjob/X` copies X's `jobTemplate`, owned by the CronJob and annotated
`cronjob.kubernetes.io/instantiate: manual`, so it shows up beside the scheduled runs.
"""

from __future__ import annotations

import argparse

from minikube_py import api
from minikube_py.cli.context import CommandError, Context, Subcommands

MANUAL_INSTANTIATION_ANNOTATION = "cronjob.kubernetes.io/instantiate"


def register_create_job(create: Subcommands) -> None:
    job = create.add("job", "create a job from an image and command, or from a cronjob's template", namespaced=True)
    job.add_argument("name", metavar="NAME", help="the job's name")
    job.add_argument("--image", metavar="IMAGE", help="the image of the job's one container")
    job.add_argument("--from", dest="source", metavar="cronjob/NAME",
                     help="copy the job template of this cronjob (cronjob/NAME or cj/NAME)")
    job.set_defaults(run=run_create_job, takes_command=True)


def job_from_image(name: str, image: str, command: list[str]) -> dict:
    container: dict = {"name": name, "image": image}
    if command:
        container["command"] = command
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": [container], "restartPolicy": "Never"}}}}


def job_from_cron_job(name: str, cron_job: dict) -> dict:
    template = (cron_job.get("spec") or {}).get("jobTemplate") or {}
    template_metadata = template.get("metadata") or {}
    annotations = {MANUAL_INSTANTIATION_ANNOTATION: "manual", **(template_metadata.get("annotations") or {})}
    metadata: dict = {"name": name, "annotations": annotations, "ownerReferences": [{
        "apiVersion": "batch/v1", "kind": "CronJob", "name": cron_job["metadata"]["name"],
        "uid": cron_job["metadata"]["uid"], "controller": True}]}
    if template_metadata.get("labels"):
        metadata["labels"] = template_metadata["labels"]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": template.get("spec") or {}}


def run_create_job(args: argparse.Namespace, context: Context) -> int:
    info = api.RESOURCES["jobs"]
    namespace = context.namespace_for(info)
    if not args.image and not args.source:
        raise CommandError("either --image or --from must be specified")
    if args.image and args.source:
        raise CommandError("--image and --from are mutually exclusive")
    if args.source:
        if args.trailing:
            raise CommandError("cannot specify --from and command")
        kind, _, source_name = args.source.partition("/")
        try:
            source_info = api.resource_for(kind)
        except KeyError as error:
            raise CommandError(str(error).strip("'\"")) from None
        if source_info.plural != "cronjobs" or not source_name:
            raise CommandError(f"--from must name a cronjob as cronjob/NAME, not {args.source!r}")
        cron_job = context.transport.get("cronjobs", namespace, source_name)
        body = job_from_cron_job(args.name, cron_job)
    else:
        body = job_from_image(args.name, args.image, list(args.trailing))
    context.transport.create("jobs", namespace, body)
    print(f"job.batch/{args.name} created")
    return 0
