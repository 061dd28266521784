"""What `delete --wait` waits for when the API answers a DELETE with a Status instead of the object."""

from minikube_py.cli.mutate import deleted_object


def test_a_success_status_stands_for_the_deleted_object_by_its_details():
    status = {"kind": "Status", "apiVersion": "v1", "status": "Success",
              "details": {"name": "web", "group": "apps", "kind": "deployments", "uid": "u-1"}}
    assert deleted_object(status, "web") == {"metadata": {"name": "web", "uid": "u-1"}}
    pod = {"kind": "Pod", "metadata": {"name": "p", "uid": "u-2", "deletionTimestamp": "2026-12-03T00:00:00Z"}}
    assert deleted_object(pod, "p") is pod
