"""`image build` on a real cluster: RUN steps run as pods, each step is cached by its input (a
second build runs nothing), the built image runs in a Deployment; built images pushed with our
own client to a local registry roll a Deployment from v1 to v2; a failing RUN names its step and
leaves no pod behind. The cluster is conftest's, one for this module."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from harness.registry import LocalRegistry
from tests.e2e.cluster import Cluster, wait_for

pytestmark = pytest.mark.skipif(not shutil.which("docker-registry"), reason="needs docker-registry (install.sh installs it)")

DOCKERFILE = """\
FROM busybox
ARG FLAVOUR=plain
ENV GREETING="hello from"
WORKDIR /srv
COPY site/ ./site/
RUN echo "$GREETING $FLAVOUR build" > built.txt && mkdir -p /var/data && rm -f /bin/vi
CMD ["sh", "-c", "cat /srv/built.txt /srv/site/index.html; exec sleep 3600"]
"""


@pytest.fixture(scope="module")
def registry():
    running = LocalRegistry().start()
    try:
        yield running
    finally:
        running.stop()


def context_directory(tmp_path, page: str) -> str:
    directory = tmp_path / "context"
    (directory / "site").mkdir(parents=True)
    (directory / "site" / "index.html").write_text(page)
    (directory / "Dockerfile").write_text(DOCKERFILE)
    return str(directory)


def deployment(name: str, image: str, policy: str = "IfNotPresent") -> str:
    return json.dumps({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": {
        "replicas": 2, "selector": {"matchLabels": {"app": name}},
        "strategy": {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "web", "image": image, "imagePullPolicy": policy}]}}}})


def pods_of(cluster: Cluster, app: str) -> list[dict]:
    return cluster.client.raw.list("pods", "default", label_selector=f"app={app}")["items"]


def running_with(cluster: Cluster, app: str, image: str) -> list[dict] | None:
    """The Deployment's pods once exactly 2 run, all from `image`, and none is left over."""
    pods = pods_of(cluster, app)
    ready = [pod for pod in pods if (pod["status"].get("containerStatuses") or [{}])[0].get("ready")
             and pod["spec"]["containers"][0]["image"] == image and not pod["metadata"].get("deletionTimestamp")]
    return ready if len(ready) == 2 and len(pods) == 2 else None


def test_a_dockerfile_builds_with_run_in_our_containers_caches_and_runs_in_a_deployment(cluster, tmp_path):
    directory = context_directory(tmp_path, "page one")
    first = cluster.cli("image", "build", "-t", "local.test/web:v1", "--build-arg", "FLAVOUR=fancy", directory,
                        timeout=120).stdout
    assert "STEP 6/7: RUN " in first and "Using cache" not in first
    again = cluster.cli("image", "build", "-t", "local.test/web:v1", "--build-arg", "FLAVOUR=fancy", directory,
                        timeout=120).stdout
    assert again.count("--> Using cache") == 3, again  # WORKDIR, COPY and RUN: nothing runs again
    assert first.splitlines()[-2] == again.splitlines()[-2], "the same image id both times"
    assert not [pod for pod in cluster.client.raw.list("pods", "default")["items"]
                if pod["metadata"]["name"].startswith("image-build-")], "the RUN step's pod is gone"
    image = json.loads(cluster.cli("image", "inspect", "local.test/web:v1").stdout)[0]
    run_layer = image["LayerDirectories"][-1]
    assert sorted(os.listdir(run_layer)) == ["bin", "srv", "var"], "mount points of the step are not in its layer"
    assert os.path.isfile(os.path.join(run_layer, "srv", "built.txt"))
    cluster.apply(deployment("web", "local.test/web:v1"))
    pods = wait_for(lambda: running_with(cluster, "web", "local.test/web:v1"), 60, "web's 2 pods running v1")
    name = pods[0]["metadata"]["name"]
    # One exec for three facts (each CLI process costs seconds on a loaded machine).
    seen = cluster.exec(name, "sh", "-c", "cat /srv/built.txt; pwd; test -e /bin/vi; echo vi=$?").stdout
    assert seen.splitlines() == ["hello from fancy build", "/srv", "vi=1"], "ENV/ARG, WORKDIR, and the RUN's rm as a whiteout"
    # A changed file in the context rebuilds from its COPY on; the steps before it stay cached.
    (tmp_path / "context" / "site" / "index.html").write_text("page two")
    changed = cluster.cli("image", "build", "-t", "local.test/web:v2", directory, timeout=120).stdout
    assert changed.count("--> Using cache") == 1, changed  # WORKDIR only


def test_a_registry_image_rolls_from_v1_to_v2_after_our_push(cluster, registry, tmp_path):
    directory = context_directory(tmp_path, "version one")
    (tmp_path / "context" / "Dockerfile").write_text(
        'FROM busybox\nCOPY site /srv/site\nCMD ["sh", "-c", "exec sleep 3600"]\n')
    for version, page in (("v1", "version one"), ("v2", "version two")):
        (tmp_path / "context" / "site" / "index.html").write_text(page)
        cluster.cli("image", "build", "-t", f"{registry.host}/team/web:{version}", directory, timeout=120)
        cluster.cli("image", "push", f"{registry.host}/team/web:{version}")
    cluster.apply(deployment("roll", f"{registry.host}/team/web:v1", policy="Always"))
    wait_for(lambda: running_with(cluster, "roll", f"{registry.host}/team/web:v1"), 60, "roll's 2 pods on v1")
    cluster.cli("set", "image", "deployment/roll", f"web={registry.host}/team/web:v2")
    pods = wait_for(lambda: running_with(cluster, "roll", f"{registry.host}/team/web:v2"), 90, "roll's 2 pods on v2")
    for pod in pods:
        assert cluster.exec(pod["metadata"]["name"], "cat", "/srv/site/index.html").stdout == "version two"
        assert pod["status"]["containerStatuses"][0]["imageID"].startswith(f"{registry.host}/team/web@sha256:")
    replica_sets = cluster.client.raw.list("replicasets", "default")["items"]
    assert sorted(rs["spec"]["replicas"] for rs in replica_sets if rs["metadata"]["name"].startswith("roll-")) == [0, 2]


def test_a_failing_run_step_names_it_and_leaves_no_pod(cluster, tmp_path):
    directory = tmp_path / "bad"
    directory.mkdir()
    (directory / "Dockerfile").write_text("FROM busybox\nRUN echo about to fail; exit 3\n")
    result = cluster.cli("image", "build", "-t", "local.test/bad:v1", str(directory), check=False, timeout=120)
    assert result.returncode == 1
    assert "Dockerfile line 2: RUN echo about to fail; exit 3" in result.stderr and "exited with code 3" in result.stderr
    assert "about to fail" in result.stdout
    assert "Traceback" not in result.stderr
    wait_for(lambda: not [pod for pod in cluster.client.raw.list("pods", "default")["items"]
                          if pod["metadata"]["name"].startswith("image-build-")], 30, "the failed step's pod deleted")
    (directory / "Dockerfile").write_text("FROM busybox\nHEALTHCHECK CMD true\n")
    result = cluster.cli("image", "build", str(directory), check=False)
    assert result.returncode == 1 and "Dockerfile line 2: unknown or unsupported instruction HEALTHCHECK" in result.stderr
