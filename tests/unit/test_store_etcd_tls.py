"""TLS to etcd, as kube-apiserver speaks it (`--etcd-cafile`, `--etcd-certfile`, `--etcd-keyfile`
with `https://` members in `--store etcd://...`): a store with the client certificate works on an
etcd that asks for one (`--client-cert-auth`); a client without it is refused, and one that does
not trust etcd's certificate gets an error naming the member and the file to fix; the flags are
checked before anything starts."""

from __future__ import annotations

import os
import tempfile

import pytest

from minikube_py import daemon
from minikube_py.api import errors
from minikube_py.store import EtcdTLS, parse_store_spec
from minikube_py.store.etcd import EtcdStore
from minikube_py.store.etcd_client import EtcdMembers, encode
from tests.etcd_cluster import ETCD, ETCD_MISSING, EtcdCertificates, EtcdCluster

needs_etcd = pytest.mark.skipif(ETCD is None, reason=ETCD_MISSING)


@pytest.fixture(scope="module")
def secure_etcd():
    if ETCD is None:
        pytest.skip(ETCD_MISSING)
    with EtcdCluster(1, name="tls", tls=True) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def other_ca():
    """A CA etcd knows nothing of, and a client certificate it signed."""
    with tempfile.TemporaryDirectory() as directory:
        certificates = EtcdCertificates(directory, "stranger-ca")
        yield certificates, certificates.issue("stranger", client=True)


def read(endpoints: list[str], tls: EtcdTLS) -> dict:
    return EtcdMembers(endpoints, timeout=5.0, tls=tls).call("/kv/range", {"key": encode("/"), "limit": 1})


@needs_etcd
def test_a_store_with_the_client_certificate_works_over_tls(secure_etcd):
    assert all(endpoint.startswith("https://127.0.0.1:") for endpoint in secure_etcd.endpoints)
    spec = parse_store_spec(secure_etcd.spec, secure_etcd.client_tls)
    with EtcdStore(list(spec.endpoints), "secure", tls=spec.tls) as store:
        watch = store.watch("secrets")
        created = store.create("secrets", {"metadata": {"name": "s", "namespace": "default"}, "data": {"k": "dg=="}})
        assert store.get("secrets", "default", "s") == created
        event = watch.next(timeout=10)
        assert event is not None and event.object["metadata"]["name"] == "s"
    config = daemon.ClusterConfig(store=secure_etcd.spec, etcd_cafile=secure_etcd.client_tls.ca_file,
                                  etcd_certfile=secure_etcd.client_tls.cert_file,
                                  etcd_keyfile=secure_etcd.client_tls.key_file)
    daemon.validate_config(config)
    assert daemon.store_unreachable(config) is None


@needs_etcd
def test_a_client_without_the_certificate_is_refused(secure_etcd, other_ca):
    endpoint = secure_etcd.endpoints[0]
    ca = EtcdTLS(secure_etcd.client_tls.ca_file)
    for tls in (ca, EtcdTLS(ca.ca_file, *other_ca[1])):  # no certificate; one another CA signed
        with pytest.raises(errors.ServiceUnavailable) as raised:
            read([endpoint], tls)
        assert raised.value.message.startswith(f"the etcd store at {endpoint} refused the TLS connection: it wants a "
                                               "client certificate it trusts: give --etcd-certfile and "
                                               "--etcd-keyfile"), raised.value.message
    # Plain HTTP gets nothing either (etcd answers a TLS port's plain requests with an error only).
    plain = endpoint.removeprefix("https://")
    with pytest.raises(errors.ApiError) as raised:
        read([plain], EtcdTLS())
    assert f"{plain} (it hung up without an answer: if it serves TLS, write it https://HOST:PORT in --store)" in \
        raised.value.message, raised.value.message


@needs_etcd
def test_a_ca_that_did_not_sign_etcds_certificate_is_an_error_naming_the_member(secure_etcd, other_ca, tmp_path, capsys):
    endpoint = secure_etcd.endpoints[0]
    wrong = EtcdTLS(other_ca[0].ca_file, secure_etcd.client_tls.cert_file, secure_etcd.client_tls.key_file)
    with pytest.raises(errors.ServiceUnavailable) as raised:
        read([endpoint], wrong)
    assert raised.value.message.startswith(f"the etcd store at {endpoint} refused the TLS connection: its certificate "
                                           "is not trusted ("), raised.value.message
    assert "--etcd-cafile must be the CA that signed the etcd members' serving certificates" in raised.value.message
    # `start` says so before it starts anything.
    code = daemon.start(str(tmp_path / "home"), name="wrongca", store=secure_etcd.spec, etcd_cafile=wrong.ca_file,
                        etcd_certfile=wrong.cert_file, etcd_keyfile=wrong.key_file)
    error = capsys.readouterr().err
    assert code == 1 and error.startswith(f"error: --store {secure_etcd.spec}: the etcd store at {endpoint} refused "
                                          "the TLS connection: its certificate is not trusted"), error
    assert "Traceback" not in error


def test_the_tls_flags_are_checked_before_anything_starts(tmp_path):
    readable = tmp_path / "ca.crt"
    readable.write_text("not checked here")
    spec = parse_store_spec("etcd://https://10.0.0.1:2379,https://10.0.0.2:2379", EtcdTLS(str(readable)))
    assert spec.endpoints == ("https://10.0.0.1:2379", "https://10.0.0.2:2379") and spec.secure
    assert str(spec) == "etcd://https://10.0.0.1:2379,https://10.0.0.2:2379"
    assert parse_store_spec("etcd://http://10.0.0.1:2379").endpoints == ("10.0.0.1:2379",)
    missing = str(tmp_path / "missing.crt")
    for options, message in [
        (dict(store="etcd://https://a:1,b:2"), "--store: 'etcd://https://a:1,b:2' mixes https:// and plain members"),
        (dict(store="etcd://a:1", etcd_cafile=str(readable)),
         "--etcd-cafile, --etcd-certfile, --etcd-keyfile: the members in --store 'etcd://a:1' are plain HTTP"),
        (dict(store="sqlite", etcd_cafile=str(readable)), "--etcd-cafile, --etcd-certfile, --etcd-keyfile: the store "
                                                          "is sqlite"),
        (dict(store="etcd://https://a:1", etcd_certfile=str(readable)),
         "--etcd-certfile and --etcd-keyfile: give both"),
        (dict(store="etcd://https://a:1", etcd_cafile=missing), f"--etcd-cafile: {missing} cannot be read"),
    ]:
        with pytest.raises(daemon.ConfigError) as raised:
            daemon.validate_config(daemon.ClusterConfig(**options))
        assert str(raised.value).startswith(message), str(raised.value)


def test_start_saves_the_tls_files_as_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("ca.crt", "client.crt", "client.key"):
        (tmp_path / name).write_text("x")
    monkeypatch.setattr(daemon, "store_unreachable", lambda config: "stop here")
    assert daemon.start(str(tmp_path / "home"), name="paths", store="etcd://https://127.0.0.1:1",
                        etcd_cafile="ca.crt", etcd_certfile="client.crt", etcd_keyfile="client.key") == 1
    assert not os.path.exists(tmp_path / "home" / "config.json"), "nothing is saved before the store answers"
