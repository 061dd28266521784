"""`image build`: a Dockerfile built into the node's store, its RUN steps run as pods.

The build itself (instructions, layers, cache) is `runtime.images.build.Builder`; this module
gives it a way to run a RUN step: a pod in the `default` namespace whose image is the build's
image so far (a temporary name in the store, `imagePullPolicy: Never`) and whose command is the
step's, so the step runs in one of our containers with a pod's network, DNS, cgroups and
Docker's default security, as `minikube image build` runs steps inside the cluster's node. Its
output is shown as it runs; once it exits 0, its container's upper directory (the node's
`containers/<id>/upper`) is the step's layer. A second container (`sleep` from the busybox
image) keeps the pod active meanwhile: the node removes a completed pod's containers. The pod is deleted when the step is done, failed or
interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from contextlib import contextmanager
from typing import Iterator

from minikube_py.api.errors import ApiError
from minikube_py.cli.context import CommandError, Context

BUILD_LABEL = "minikube-py.io/image-build"
CONTAINER_ID_PREFIX = "minikube-py://"


def run_image_build(args: argparse.Namespace, context: Context) -> int:
    from minikube_py.runtime.images import ContainerRuntimeError, ImageStore, ImageStoreError
    from minikube_py.runtime.images.build import Builder, BuildError
    from minikube_py.runtime.images.dockerfile import DockerfileError
    from minikube_py.runtime.images.hosts import RegistriesConfigError, RegistryHosts
    from minikube_py.runtime.images.puller import PullError, Puller
    from minikube_py.runtime.images.registry import RegistryClient
    from minikube_py.runtime.images.store import normalize_reference

    dockerfile_path = args.file or os.path.join(args.directory, "Dockerfile")
    try:
        with open(dockerfile_path) as file:
            text = file.read()
    except OSError as error:
        raise CommandError(f"cannot read the Dockerfile {dockerfile_path}: {error.strerror}") from None
    build_args = {}
    for entry in args.build_arg or []:
        name, separator, value = entry.partition("=")
        if not separator:
            value = os.environ.get(name, "")  # docker's `--build-arg NAME` takes the value from the environment
        build_args[name] = value
    try:
        names = [normalize_reference(name) for name in args.tag or []]
        hosts = RegistryHosts.load(context.home)
        store = ImageStore(context.home)
    except ContainerRuntimeError as error:
        raise CommandError(error.message) from None
    except (RegistriesConfigError, ImageStoreError, OSError) as error:
        raise CommandError(str(error)) from None
    client = RegistryClient(hosts)

    def pull(reference: str):
        try:
            return Puller(store, client).pull(reference).image
        except PullError as error:
            raise CommandError(error.message) from None

    runner = PodStepRunner(context, sys.stdout)
    builder = Builder(store, runner.run if _cluster_running(context) else None, pull, output=lambda line: print(line, flush=True))
    try:
        builder.build(text, args.directory, names, build_args)
    except (BuildError, DockerfileError) as error:
        raise CommandError(str(error)) from None
    finally:
        client.close()
    return 0


def _cluster_running(context: Context) -> bool:
    return os.path.exists(context.socket_path)


class PodStepRunner:
    def __init__(self, context: Context, out, poll_seconds: float = 0.1):
        self.context = context
        self.out = out
        self.poll_seconds = poll_seconds

    @contextmanager
    def run(self, step) -> Iterator[str]:
        from minikube_py.runtime.images.build import BuildError

        transport = self.context.transport
        name = f"image-build-{uuid.uuid4().hex[:10]}"
        pod = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {BUILD_LABEL: "run-step"}},
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "terminationGracePeriodSeconds": 0,
                "containers": [
                    {"name": "step", "image": step.image, "imagePullPolicy": "Never",
                     "command": step.argv, "env": [{"name": k, "value": v} for k, v in step.env]},
                    # Keeps the pod active after the step exits, so its container (and upper
                    # directory) stays until it is read; a completed pod's containers are removed.
                    {"name": "hold", "image": "busybox", "imagePullPolicy": "IfNotPresent",
                     "command": ["sleep", "2147483647"]},
                ],
            },
        }
        try:
            transport.create("pods", "default", pod)
        except ApiError as error:
            raise BuildError(f"{step.description}: cannot start its pod: {error}") from None
        try:
            status = self._wait(name, step.description, started=True)
            try:
                for chunk in transport.logs("default", name, container="step", follow=True):
                    self.out.write(chunk.decode(errors="replace"))
                    self.out.flush()
            except ApiError:
                pass  # the output is a courtesy: the exit code decides
            status = self._wait(name, step.description, started=False)
            terminated = status["state"]["terminated"]
            if terminated.get("exitCode") != 0:
                raise BuildError(f"{step.description}: the command exited with code {terminated.get('exitCode')}"
                                 f"{' (' + terminated['reason'] + ')' if terminated.get('reason') not in (None, 'Error') else ''}")
            container_id = (status.get("containerID") or "").removeprefix(CONTAINER_ID_PREFIX)
            upper = os.path.join(self.context.home, "containers", container_id, "upper")
            if not container_id or not os.path.isdir(upper):
                raise BuildError(f"{step.description}: its container's files are not on this host ({upper})")
            yield upper
        finally:
            try:
                transport.delete("pods", "default", name, grace_period_seconds=0)
            except ApiError:
                pass

    def _wait(self, name: str, description: str, started: bool) -> dict:
        """The step container's status once it runs or ran (`started`), else once it ended."""
        from minikube_py.runtime.images.build import BuildError

        while True:
            pod = self.context.transport.get("pods", "default", name)
            statuses = [status for status in (pod.get("status") or {}).get("containerStatuses") or []
                        if status.get("name") == "step"]
            state = statuses[0].get("state") or {} if statuses else {}
            if "terminated" in state or (started and "running" in state):
                return statuses[0]
            waiting = state.get("waiting") or {}
            if waiting.get("reason") not in (None, "ContainerCreating", "PodInitializing"):
                raise BuildError(f"{description}: its container cannot start: {waiting.get('reason')}: "
                                 f"{waiting.get('message', '')}")
            time.sleep(self.poll_seconds)
