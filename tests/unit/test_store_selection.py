"""`start --store`: which backend a cluster uses, bad values, and an etcd nobody answers at."""

import json

import pytest

from minikube_py import daemon
from minikube_py.store import Store, StoreSpec, open_store, parse_store_spec
from minikube_py.store.etcd_client import EtcdMembers, decode, encode
from tests.etcd_cluster import free_port


def test_sqlite_is_the_default_and_etcd_takes_a_list_of_members():
    assert daemon.ClusterConfig().store == "sqlite"
    assert parse_store_spec("sqlite") == StoreSpec("sqlite")
    spec = parse_store_spec("etcd://127.0.0.1:2379,localhost:22379")
    assert spec == StoreSpec("etcd", ("127.0.0.1:2379", "localhost:22379"))
    assert str(spec) == "etcd://127.0.0.1:2379,localhost:22379"


@pytest.mark.parametrize("text, message", [
    ("mysql://db", "'mysql://db' is not a store; use sqlite or etcd://[https://]HOST:PORT[,[https://]HOST:PORT...]"),
    ("etcd://127.0.0.1", "'127.0.0.1' in 'etcd://127.0.0.1' is not HOST:PORT or https://HOST:PORT (such as "
                         "127.0.0.1:2379)"),
    ("etcd://127.0.0.1:2379,:2", "':2' in 'etcd://127.0.0.1:2379,:2' is not HOST:PORT"),
    ("etcd://h:70000", "'h:70000' in 'etcd://h:70000' is not HOST:PORT"),
])
def test_a_bad_store_is_a_config_error_naming_the_flag(text, message):
    with pytest.raises(daemon.ConfigError) as raised:
        daemon.validate_config(daemon.ClusterConfig(store=text))
    assert str(raised.value).startswith("--store: ") and message in str(raised.value)


def test_start_with_an_unreachable_etcd_is_a_clear_error_naming_the_endpoints(tmp_path, capsys):
    ports = [free_port(), free_port()]
    spec = f"etcd://127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}"
    assert daemon.start(str(tmp_path / "home"), name="unreach", store=spec) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"error: --store {spec}: the etcd store is unreachable: no member answered at ")
    for port in ports:
        assert f"127.0.0.1:{port} ([Errno 111] Connection refused)" in error
    assert "Traceback" not in error


def test_open_store_gives_the_homes_sqlite_file_or_the_clusters_keys_in_etcd(tmp_path, etcd_single):
    with open_store(parse_store_spec("sqlite"), str(tmp_path), "one") as store:
        assert isinstance(store, Store) and store.path == str(tmp_path / "state.db")
    spec = parse_store_spec(etcd_single.spec)
    with open_store(spec, str(tmp_path), "one") as one, open_store(spec, str(tmp_path), "two") as two:
        one.create("pods", {"metadata": {"name": "p", "namespace": "default"}})
        assert two.get("pods", "default", "p") is None, "clusters sharing an etcd do not see each other"
        assert one.get("pods", "default", "p") is not None
        assert daemon.store_unreachable(daemon.ClusterConfig(store=etcd_single.spec)) is None
        one.create("namespaces", {"metadata": {"name": "team"}})
    members = EtcdMembers(etcd_single.endpoints)
    keys = {decode(kv["key"]): kv for kv in members.call(
        "/kv/range", {"key": encode("/one/"), "range_end": encode("/one0")})["kvs"]}
    # kube-apiserver's layout under the cluster's prefix; resourceVersion is the key's mod_revision
    assert set(keys) == {"/one/registry/pods/default/p", "/one/registry/namespaces/team"}
    stored = json.loads(decode(keys["/one/registry/pods/default/p"]["value"]))
    assert "resourceVersion" not in stored["metadata"]


@pytest.mark.parametrize("options", [dict(store="sqlite", leader_elect=True),
                                     dict(store="etcd://127.0.0.1:2379", leader_elect=False)])
def test_a_control_plane_only_daemon_needs_etcd_and_leader_election(options):
    with pytest.raises(daemon.ConfigError, match="--control-plane-only: .*give --store etcd://... and --leader-elect"):
        daemon.validate_config(daemon.ClusterConfig(control_plane_only=True, **options))
    daemon.validate_config(daemon.ClusterConfig(control_plane_only=True, store="etcd://127.0.0.1:2379",
                                                leader_elect=True))


def test_leader_election_timings_must_leave_room_to_step_down():
    with pytest.raises(daemon.ConfigError, match="retry period < renew deadline < lease duration"):
        daemon.validate_config(daemon.ClusterConfig(leader_elect_lease_duration=4, leader_elect_renew_deadline=5))
    timings = daemon.leader_election_timings(daemon.ClusterConfig(
        leader_elect_lease_duration=4, leader_elect_renew_deadline=3, leader_elect_retry_period=0.5))
    assert (timings.lease_duration, timings.renew_deadline, timings.retry_period) == (4, 3, 0.5)


def test_another_control_plane_takes_the_clusters_certificates(tmp_path):
    source, home = tmp_path / "first", tmp_path / "second"
    (source / "pki").mkdir(parents=True)
    (source / "pki" / "ca.crt").write_text("CA")
    (source / "pki" / "sa.key").write_text("KEY")
    daemon.copy_certificates(str(source), str(home))
    assert (home / "pki" / "ca.crt").read_text() == "CA" and (home / "pki" / "sa.key").read_text() == "KEY"
    assert (home / "pki").stat().st_mode & 0o777 == 0o700 and (home / "pki" / "sa.key").stat().st_mode & 0o777 == 0o600
    with pytest.raises(OSError, match="holds no cluster certificates"):
        daemon.copy_certificates(str(tmp_path / "nothing"), str(home))


def test_stopping_a_control_plane_only_daemon_leaves_the_host_alone(tmp_path, capsys, monkeypatch):
    home = str(tmp_path / "cp")
    daemon.ClusterConfig(name="cp", store="etcd://127.0.0.1:2379", leader_elect=True, control_plane_only=True).save(home)
    monkeypatch.setattr(daemon, "_remove_host_resources", lambda *args: pytest.fail("the cluster's host resources"))
    assert daemon.stop(home, remove_nodes=lambda config: pytest.fail("the cluster's nodes")) == 0
    assert 'control plane of cluster "cp"' in capsys.readouterr().out
