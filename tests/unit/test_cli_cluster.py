"""start/stop/status wiring to the daemon module, the image commands, and a missing daemon."""

import io
import os
import json
import shutil
import tarfile
import tempfile

import pytest

from minikube_py import daemon
from minikube_py.cli.cluster import format_status
from minikube_py.cli.main import main


@pytest.fixture
def home():
    directory = tempfile.mkdtemp(prefix="mkpy-cli-")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_start_passes_every_flag_to_the_daemon(home, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(daemon, "start", lambda home, **options: calls.append((home, options)) or 0)
    code, _, _ = run(capsys, "start", "--home", home, "--name", "test", "--pod-cidr", "10.99.0.0/16",
                     "--service-cidr", "10.100.0.0/16", "--service-node-port-range", "31000-31999", "--port",
                     "6443", "--node-name", "n1", "--foreground", "--restart-backoff", "1s:10s", "--pids-limit", "64",
                     "--max-pods", "1000", "--terminated-pod-gc-threshold", "5",
                     "--seccomp-default=false", "--store", "etcd://https://127.0.0.1:2379", "--etcd-cafile", "ca.crt",
                     "--etcd-certfile", "c.crt", "--etcd-keyfile", "c.key", "--leader-elect",
                     "--metric-resolution", "500ms", "--hpa-sync-period", "1m30s",
                     "--image-gc-high-threshold", "90", "--image-gc-low-threshold", "70",
                     "--node-cidr-mask-size", "22", "--node-monitor-grace-period", "8",
                     "--default-not-ready-toleration-seconds", "30", "--default-unreachable-toleration-seconds", "20",
                     "--node-eviction-rate", "0.5", "--leader-elect-lease-duration", "4s",
                     "--leader-elect-renew-deadline", "3s", "--leader-elect-retry-period", "500ms",
                     "--control-plane-only", "--certificates-from", "/other/home")
    assert code == 0
    assert calls == [(home, {"name": "test", "pod_cidr": "10.99.0.0/16", "service_cidr": "10.100.0.0/16",
                             "service_node_port_range": "31000-31999", "port": 6443, "node_name": "n1",
                             "foreground": True, "restart_backoff": "1s:10s", "pids_limit": 64,
                             "max_pods": 1000, "terminated_pod_gc_threshold": 5, "seccomp_default": False,
                             "store": "etcd://https://127.0.0.1:2379", "etcd_cafile": "ca.crt",
                             "etcd_certfile": "c.crt", "etcd_keyfile": "c.key", "leader_elect": True,
                             "metric_resolution": 0.5, "hpa_sync_period": 90.0,
                             "image_gc_high_threshold": 90, "image_gc_low_threshold": 70, "node_cidr_mask_size": 22,
                             "node_monitor_grace_period": 8.0, "default_not_ready_toleration_seconds": 30,
                             "default_unreachable_toleration_seconds": 20, "node_eviction_rate": 0.5,
                             "leader_elect_lease_duration": 4.0, "leader_elect_renew_deadline": 3.0,
                             "leader_elect_retry_period": 0.5, "control_plane_only": True,
                             "certificates_from": "/other/home"})]


@pytest.mark.parametrize("argv, expected", [([], None), (["--seccomp-default"], True),
                                            (["--seccomp-default=true"], True), (["--seccomp-default=false"], False)])
def test_start_seccomp_default_reads_like_kubelets_flag(home, capsys, monkeypatch, argv, expected):
    calls = []
    monkeypatch.setattr(daemon, "start", lambda home, **options: calls.append(options) or 0)
    assert run(capsys, "start", "--home", home, *argv)[0] == 0
    assert calls[0]["seccomp_default"] is expected


def test_start_refuses_a_seccomp_default_that_is_not_a_boolean(home, capsys):
    with pytest.raises(SystemExit):
        main(["start", "--home", home, "--seccomp-default=maybe"])
    assert "is not true or false" in capsys.readouterr().err


def test_stop_returns_the_daemons_exit_code(home, capsys, monkeypatch):
    monkeypatch.setattr(daemon, "stop", lambda stopped_home, grace_period, **_: 3 if stopped_home == home else 0)
    assert run(capsys, "--home", home, "stop")[0] == 3


def test_stop_passes_the_grace_period_to_the_daemon(home, capsys, monkeypatch):
    asked = []
    monkeypatch.setattr(daemon, "stop", lambda stopped_home, grace_period, **_: asked.append(grace_period) or 0)
    run(capsys, "--home", home, "stop", "--grace-period", "2")
    run(capsys, "--home", home, "stop")
    assert asked == [2.0, None]


def test_status_of_a_stopped_cluster_says_stopped_and_exits_1(home, capsys):
    code, out, _ = run(capsys, "--home", home, "status")
    assert code == 1
    assert "Stopped" in out
    code, out, _ = run(capsys, "--home", home, "status", "-o", "json")
    assert code == 1 and json.loads(out)["running"] is False


def test_status_text_of_a_running_cluster():
    text = format_status({"running": True, "pid": 42, "name": "minikube", "podCIDR": "10.244.0.0/16",
                          "apiSocket": "/h/api.sock", "port": 6443, "node": "n1", "nodeReady": True, "pods": 3,
                          "apiReachable": True})
    assert text.splitlines() == [
        "cluster:   minikube",
        "daemon:    Running (pid 42)",
        "node:      n1 (Ready)",
        "pod CIDR:  10.244.0.0/16",
        "API:       /h/api.sock and https://127.0.0.1:6443",
        "pods:      3",
    ]


def test_a_command_without_a_running_daemon_says_how_to_start_one(home, capsys):
    code, out, err = run(capsys, "--home", home, "get", "pods")
    assert (code, out) == (1, "")
    assert err.startswith(f"error: no minikube-py API at {home}/api.sock: start the cluster with 'minikube-py start'")


def rootfs_tarball(directory: str) -> str:
    path = f"{directory}/rootfs.tar"
    with tarfile.open(path, "w") as archive:
        data = b"#!/bin/sh\necho hi\n"
        member = tarfile.TarInfo("bin/hello")
        member.size, member.mode = len(data), 0o755
        archive.addfile(member, io.BytesIO(data))
    return path


def test_image_import_ls_tag_and_rm(home, capsys):
    tarball = rootfs_tarball(home)
    code, out, _ = run(capsys, "--home", home, "image", "import", "hello:1", tarball)
    assert code == 0 and out.startswith("Imported hello:1 (sha256:")
    assert run(capsys, "--home", home, "image", "tag", "hello:1", "greeting:latest")[0] == 0
    rows = [line.split() for line in run(capsys, "--home", home, "image", "ls")[1].splitlines()]
    assert rows[0][:3] == ["REPOSITORY", "TAG", "IMAGE"]
    assert [row[:2] for row in rows[1:]] == [["greeting", "latest"], ["hello", "1"]]
    assert run(capsys, "--home", home, "image", "rm", "greeting")[1] == "Untagged: greeting\n"
    code, out, _ = run(capsys, "--home", home, "image", "rm", "hello:1")
    assert out.startswith("Untagged: hello:1\nDeleted: sha256:")
    code, _, err = run(capsys, "--home", home, "image", "rm", "hello:1")
    assert code == 1 and err.startswith('error: image "hello:1" not found')


@pytest.mark.parametrize("flags, message", [
    (["--image-gc-high-threshold", "101"], "--image-gc-high-threshold: 101 must be a percentage of the disk"),
    (["--image-gc-low-threshold", "-1"], "--image-gc-low-threshold: -1 must be a percentage of the disk"),
    (["--image-gc-high-threshold", "70", "--image-gc-low-threshold", "75"],
     "--image-gc-low-threshold: 75 must not be above --image-gc-high-threshold (70)"),
])
def test_start_refuses_image_gc_thresholds_kubelet_would_refuse(home, capsys, flags, message):
    code, _, err = run(capsys, "start", "--home", home, *flags)
    assert code == 1 and message in err
    assert not os.path.exists(os.path.join(home, "config.json")), "nothing saved"
