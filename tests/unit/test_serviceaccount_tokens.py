"""Bound ServiceAccount tokens: the signed JWT's claims, the TokenRequest API, the TLS door taking
the token as a ServiceAccount user, the admission step adding kube-api-access-*, and the root CA
publisher."""

from __future__ import annotations

import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from controllers.rootca import ROOT_CA_CONFIG_MAP, RootCaPublisher
from minikube_py.api import errors
from minikube_py.apiserver.auth import TokenAuthenticator
from minikube_py.apiserver.registry import Registry
from minikube_py.apiserver.server import ApiHttpServer
from minikube_py.apiserver.serviceaccount_admission import TOKEN_MOUNT_PATH
from minikube_py.apiserver.serviceaccount_tokens import (
    ISSUER,
    TokenIssuer,
    key_id,
    load_or_create_signing_key,
    service_account_user,
)
from minikube_py.clock import FakeClock
from minikube_py.store import Store
from tests.unit.tls_harness import https_connection, make_credentials, tls_config


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def issuer(tmp_path, clock):
    return TokenIssuer(load_or_create_signing_key(str(tmp_path / "pki" / "service-account.key")), clock)


@pytest.fixture
def registry(issuer, clock):
    registry = Registry(Store(":memory:"), clock=clock)
    registry.token_issuer = issuer
    registry.create("serviceaccounts", "default", {"apiVersion": "v1", "kind": "ServiceAccount",
                                                   "metadata": {"name": "default"}})
    return registry


def make_pod(registry, name="web", **spec):
    return registry.create("pods", "default", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                                               "spec": {"nodeName": "node1", "containers": [
                                                   {"name": "main", "image": "busybox"}], **spec}})


def request(pod, expiration=3600, audiences=None):
    spec = {"expirationSeconds": expiration,
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"],
                               "uid": pod["metadata"]["uid"]}}
    if audiences is not None:
        spec["audiences"] = audiences
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}


def test_the_signing_key_is_made_once_private(tmp_path):
    path = tmp_path / "pki" / "service-account.key"
    first = load_or_create_signing_key(str(path))
    assert (path.stat().st_mode & 0o777) == 0o600 and (path.parent.stat().st_mode & 0o777) == 0o700
    again = load_or_create_signing_key(str(path))
    assert key_id(first.public_key()) == key_id(again.public_key())


def test_a_token_request_gives_a_jwt_with_kubernetes_claims(registry, issuer, clock):
    pod = make_pod(registry)
    reply = registry.create_token("default", "default", request(pod, 3600))
    token = reply["status"]["token"]
    assert reply["kind"] == "TokenRequest" and reply["apiVersion"] == "authentication.k8s.io/v1"
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256" and header["kid"] == issuer.key_id
    claims = issuer.verify(token)
    account = registry.get("serviceaccounts", "default", "default")
    assert claims["iss"] == ISSUER and claims["aud"] == [ISSUER]
    assert claims["sub"] == "system:serviceaccount:default:default"
    assert claims["exp"] - claims["iat"] == 3600 and claims["nbf"] == claims["iat"]
    assert claims["kubernetes.io"]["namespace"] == "default"
    assert claims["kubernetes.io"]["serviceaccount"] == {"name": "default", "uid": account["metadata"]["uid"]}
    assert claims["kubernetes.io"]["pod"] == {"name": "web", "uid": pod["metadata"]["uid"]}
    assert claims["kubernetes.io"]["node"]["name"] == "node1"
    assert reply["status"]["expirationTimestamp"] == json.loads(json.dumps(reply))["status"]["expirationTimestamp"]


@pytest.mark.parametrize("change, error, message", [
    (lambda body: body["spec"].update(expirationSeconds=599), errors.Invalid,
     'TokenRequest.authentication.k8s.io "default" is invalid: spec.expirationSeconds: Invalid value: 599: '
     "may not specify a duration less than 10 minutes"),
    (lambda body: body["spec"]["boundObjectRef"].update(uid="other"), errors.Conflict,
     "the UID in the bound object reference (other) does not match the UID in record"),
    (lambda body: body["spec"]["boundObjectRef"].update(name="nobody"), errors.NotFound, 'pods "nobody" not found'),
])
def test_bad_token_requests_are_refused_with_kubernetes_messages(registry, change, error, message):
    body = request(make_pod(registry))
    change(body)
    with pytest.raises(error) as caught:
        registry.create_token("default", "default", body)
    assert message in caught.value.message


def test_a_missing_service_account_is_not_found(registry):
    with pytest.raises(errors.NotFound) as caught:
        registry.create_token("default", "builder", request(make_pod(registry)))
    assert caught.value.message == 'serviceaccounts "builder" not found'


def test_a_token_authenticates_while_its_pod_and_account_live(registry, issuer, clock):
    pod = make_pod(registry)
    token = registry.create_token("default", "default", request(pod))["status"]["token"]
    user = service_account_user(registry, issuer, token)
    assert user.name == "system:serviceaccount:default:default"
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated")
    other_audience = registry.create_token("default", "default", request(pod, audiences=["vault"]))["status"]["token"]
    assert service_account_user(registry, issuer, other_audience) is None  # not meant for the API
    clock.advance(3601)
    assert service_account_user(registry, issuer, token) is None  # expired


def test_a_token_dies_with_its_pod_or_a_recreated_account(registry, issuer):
    pod = make_pod(registry)
    token = registry.create_token("default", "default", request(pod))["status"]["token"]
    registry.delete("serviceaccounts", "default", "default")
    registry.create("serviceaccounts", "default", {"apiVersion": "v1", "kind": "ServiceAccount",
                                                   "metadata": {"name": "default"}})
    assert service_account_user(registry, issuer, token) is None
    token = registry.create_token("default", "default", request(pod))["status"]["token"]
    assert service_account_user(registry, issuer, token) is not None
    registry.delete("pods", "default", "web", grace_period_seconds=0)
    assert service_account_user(registry, issuer, token) is None


def test_a_token_signed_by_another_key_is_refused(registry, issuer, clock):
    stranger = TokenIssuer(ec.generate_private_key(ec.SECP256R1()), clock)
    account = registry.get("serviceaccounts", "default", "default")
    forged, _ = stranger.sign("default", account, [ISSUER], 3600)
    assert service_account_user(registry, issuer, forged) is None
    assert TokenAuthenticator([], lambda token: service_account_user(registry, issuer, token)).user_for(forged) is None


def test_the_tls_door_takes_a_service_account_token_and_authorization_refuses_it(tmp_path, registry):
    paths = make_credentials(tmp_path)
    server = ApiHttpServer(registry, str(tmp_path / "api.sock"), port=0, tls=tls_config(paths))
    server.start()
    try:
        token = registry.create_token("default", "default", request(make_pod(registry)))["status"]["token"]
        answers = []
        for presented in (token, token[:-4] + "AAAA"):
            connection = https_connection(paths, server.port)
            connection.request("GET", "/api/v1/namespaces/default/pods", headers={"Authorization": f"Bearer {presented}"})
            response = connection.getresponse()
            answers.append((response.status, json.loads(response.read())["message"]))
            connection.close()
        assert answers[0][0] == 403  # authenticated as the ServiceAccount, which may do nothing
        assert 'User "system:serviceaccount:default:default" cannot list resource "pods"' in answers[0][1]
        assert answers[1][0] == 401  # a broken signature
    finally:
        server.stop()


# --- admission ----------------------------------------------------------------------------------


def test_admission_adds_the_kube_api_access_volume_to_every_container(registry):
    pod = registry.create("pods", "default", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
        "initContainers": [{"name": "init", "image": "busybox"}],
        "containers": [{"name": "a", "image": "busybox"},
                       {"name": "b", "image": "busybox",
                        "volumeMounts": [{"name": "own", "mountPath": TOKEN_MOUNT_PATH}]}],
        "volumes": [{"name": "own", "emptyDir": {}}]}})
    spec = pod["spec"]
    assert spec["serviceAccountName"] == "default"
    volume = spec["volumes"][-1]
    assert volume["name"].startswith("kube-api-access-") and len(volume["name"]) == len("kube-api-access-") + 5
    sources = volume["projected"]["sources"]
    assert volume["projected"]["defaultMode"] == 420
    assert sources[0] == {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
    assert sources[1] == {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}
    assert sources[2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"] == "metadata.namespace"
    token_mount = {"name": volume["name"], "readOnly": True, "mountPath": TOKEN_MOUNT_PATH}
    assert token_mount in spec["initContainers"][0]["volumeMounts"]
    assert token_mount in spec["containers"][0]["volumeMounts"]
    assert spec["containers"][1]["volumeMounts"] == [{"name": "own", "mountPath": TOKEN_MOUNT_PATH}]


def test_automount_false_on_the_pod_or_its_account_adds_nothing(registry):
    pod = make_pod(registry, "no-token", automountServiceAccountToken=False)
    assert "volumes" not in pod["spec"]
    registry.create("serviceaccounts", "default", {"apiVersion": "v1", "kind": "ServiceAccount",
                                                   "metadata": {"name": "quiet"}, "automountServiceAccountToken": False})
    pod = make_pod(registry, "quiet-pod", serviceAccountName="quiet")
    assert "volumes" not in pod["spec"]
    pod = make_pod(registry, "asks", serviceAccountName="quiet", automountServiceAccountToken=True)
    assert pod["spec"]["volumes"][0]["name"].startswith("kube-api-access-")


# --- the root CA publisher ----------------------------------------------------------------------


def test_every_namespace_gets_the_cluster_ca_and_keeps_it(cluster):
    publisher = RootCaPublisher(cluster.client, "-----BEGIN CERTIFICATE-----\nCA\n", cluster.clock, cluster.informers)
    cluster.create("namespaces", {"metadata": {"name": "team"}}, namespace=None)
    cluster.settle(publisher)
    for namespace in ("default", "team"):
        assert cluster.get("configmaps", ROOT_CA_CONFIG_MAP, namespace).data == {"ca.crt": "-----BEGIN CERTIFICATE-----\nCA\n"}
    edited = cluster.registry.get("configmaps", "team", ROOT_CA_CONFIG_MAP)
    edited["data"] = {"ca.crt": "tampered"}
    cluster.registry.replace("configmaps", "team", ROOT_CA_CONFIG_MAP, edited)
    cluster.settle(publisher)
    assert cluster.get("configmaps", ROOT_CA_CONFIG_MAP, "team").data["ca.crt"].endswith("CA\n")
