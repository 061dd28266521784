"""The agent's image path: pull policy, pull secrets, ErrImagePull then ImagePullBackOff, events,
imageID, and pulls that never hold a pod worker."""

from __future__ import annotations

import base64
import json
import threading

import pytest

from minikube_py.agent.images import ImagePulls
from minikube_py.runtime.types import ResolvedImage
from tests.unit.agent_harness import AgentHarness

APP = "127.0.0.1:5000/team/app:v1"
APP_IMAGE = ResolvedImage(reference=APP, id="127.0.0.1:5000/team/app@sha256:" + "a" * 64, cmd=["serve"],
                          from_registry=True, size=1234)


@pytest.fixture
def harness(tmp_path):
    harness = AgentHarness(tmp_path)
    harness.start()
    return harness


def reasons(harness) -> list[str]:
    return [reason for reason, _ in harness.events()]


def test_a_missing_image_is_pulled_then_runs_with_its_repo_digest_as_image_id(harness):
    harness.runtime.registry[APP] = APP_IMAGE
    harness.create_pod("app", [{"name": "main", "image": APP}])
    harness.sync()
    status = harness.status("app")
    assert "running" in status["state"] and status["imageID"] == APP_IMAGE.id
    events = dict(harness.events())
    assert events["Pulling"] == f'Pulling image "{APP}"'
    assert events["Pulled"].startswith(f'Successfully pulled image "{APP}" in 500ms (')
    assert events["Pulled"].endswith("Image size: 1234 bytes.")


def test_a_failed_pull_shows_err_image_pull_then_image_pull_back_off_and_recovers(harness):
    harness.create_pod("app", [{"name": "main", "image": APP}])
    harness.agent.pods.refresh()
    harness.agent.drain()  # one sync: the pull fails
    waiting = harness.status("app")["state"]["waiting"]
    assert waiting["reason"] == "ErrImagePull"
    assert waiting["message"].endswith(f"{APP}: not found")
    harness.sync()
    waiting = harness.status("app")["state"]["waiting"]
    assert waiting["reason"] == "ImagePullBackOff"
    assert waiting["message"].startswith(f'Back-off pulling image "{APP}": ErrImagePull: failed to pull and unpack image')
    assert ("BackOff", f'Back-off pulling image "{APP}"') in harness.events()
    assert ("Failed", "Error: ErrImagePull") in harness.events()
    harness.runtime.registry[APP] = APP_IMAGE  # the tag is pushed
    harness.advance(5)
    assert harness.status("app")["state"]["waiting"]["reason"] == "ImagePullBackOff", "still inside the 10 s back-off"
    harness.advance(6)
    assert "running" in harness.status("app")["state"]


def test_the_pull_back_off_doubles_per_failure(harness):
    harness.create_pod("app", [{"name": "main", "image": APP}])
    harness.sync()
    pulls = lambda: sum(1 for call in harness.runtime.calls if call[0] == "pull_image")  # noqa: E731
    assert pulls() == 1
    harness.advance(10.5)
    assert pulls() == 2
    harness.advance(15)
    assert pulls() == 2, "the second back-off is 20 s"
    harness.advance(6)
    assert pulls() == 3


def docker_config_secret(harness, name: str) -> None:
    config = json.dumps({"auths": {"127.0.0.1:5000": {"username": "u", "password": "p"}}}).encode()
    harness.registry.create("secrets", "default", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(config).decode()}})


def test_the_pods_pull_secrets_go_to_the_runtime_and_a_missing_one_is_reported(harness):
    docker_config_secret(harness, "regcred")
    harness.agent.secrets.refresh()
    harness.runtime.registry[APP] = APP_IMAGE
    harness.create_pod("app", [{"name": "main", "image": APP}], imagePullSecrets=[{"name": "regcred"}, {"name": "gone"}])
    harness.sync()
    pull = next(call for call in harness.runtime.calls if call[0] == "pull_image")
    assert pull[2] == ["secret default/regcred"]
    assert ("FailedToRetrieveImagePullSecret", "Unable to retrieve some image pull secrets (gone); attempting to pull "
                                               "the image may not succeed.") in harness.events()


def test_a_service_accounts_pull_secrets_are_used_when_the_pod_names_none(harness):
    docker_config_secret(harness, "sa-cred")
    harness.registry.create("serviceaccounts", "default", {
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder"},
        "imagePullSecrets": [{"name": "sa-cred"}]})
    harness.agent.secrets.refresh()
    harness.agent.service_accounts.refresh()
    harness.runtime.registry[APP] = APP_IMAGE
    harness.create_pod("app", [{"name": "main", "image": APP}], serviceAccountName="builder")
    harness.sync()
    pull = next(call for call in harness.runtime.calls if call[0] == "pull_image")
    assert pull[2] == ["secret default/sa-cred"]


def test_always_pulls_registry_images_at_each_start_but_uses_local_images_as_they_are(harness):
    harness.runtime.registry[APP] = APP_IMAGE
    harness.runtime.add_image(APP_IMAGE)
    harness.create_pod("app", [{"name": "main", "image": APP, "imagePullPolicy": "Always"},
                               {"name": "local", "image": "busybox"}])
    harness.sync()
    assert [call[1] for call in harness.runtime.calls if call[0] == "pull_image"] == [APP]
    assert ("Pulled", 'Container image "busybox" already present on machine') in harness.events()


def test_if_not_present_uses_the_image_on_the_node(harness):
    harness.runtime.add_image(APP_IMAGE)
    harness.create_pod("app", [{"name": "main", "image": APP}])
    harness.sync()
    assert "pull_image" not in harness.runtime.call_names()
    assert "running" in harness.status("app")["state"]


def test_a_hung_pull_does_not_hold_other_pods(harness):
    release = threading.Event()
    original = harness.runtime.pull_image

    def hanging(reference, configs):
        release.wait(10)
        return original(reference, configs)

    harness.runtime.pull_image = hanging
    harness.runtime.registry[APP] = APP_IMAGE
    agent = harness.agent
    agent.image_pulls = ImagePulls(harness.runtime, harness.clock, agent.recorder, agent.queue.add,
                                   lambda ns, name: None, lambda ns, name: None, 10, 300, pulls_in_parallel=1)
    harness.create_pod("slow", [{"name": "main", "image": APP}])
    harness.create_pod("quick", [{"name": "main"}])
    harness.sync()
    assert "running" in harness.status("quick")["state"]
    assert harness.status("slow")["state"]["waiting"]["reason"] == "ContainerCreating"
    release.set()
    agent.image_pulls.pool.shutdown(wait=True)
    harness.sync()
    assert "running" in harness.status("slow")["state"]
    assert any(reason == "Pulled" and message.startswith(f'Successfully pulled image "{APP}"')
               for reason, message in harness.events())


@pytest.mark.parametrize("stop_signal, wanted", [("SIGINT", 2), ("QUIT", 3), ("10", 10), ("", 15), ("SIGNOPE", 15)])
def test_a_deleted_pods_container_gets_its_images_stop_signal_instead_of_sigterm(harness, stop_signal, wanted):
    harness.runtime.add_image(ResolvedImage(reference="stoppy:v1", id="sha256:" + "5" * 64, cmd=["serve"],
                                            stop_signal=stop_signal))
    uid = harness.create_pod("app", [{"name": "main", "image": "stoppy:v1", "imagePullPolicy": "Never"}],
                             terminationGracePeriodSeconds=30)
    harness.sync()
    container_id = harness.container_id(uid)
    harness.registry.delete("pods", "default", "app")
    harness.sync()
    sent = [call[2] for call in harness.runtime.calls if call[0] == "kill_container" and call[1] == container_id]
    assert sent[:1] == [wanted]
