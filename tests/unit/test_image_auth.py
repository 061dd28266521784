"""Registry auth: the WWW-Authenticate challenge parser and the pull-secret keyring."""

from __future__ import annotations

import base64
import json

import pytest

from minikube_py.runtime.images.auth import AuthConfigError, Credentials, Keyring, parse_challenges


def test_a_bearer_challenge_gives_realm_service_and_scope():
    [challenge] = parse_challenges(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:samalba/my-app:pull,push"')
    assert challenge.scheme == "bearer"
    assert challenge.parameters == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                                    "scope": "repository:samalba/my-app:pull,push"}


def test_several_challenges_in_one_header_are_split_at_each_scheme():
    challenges = parse_challenges('Basic realm="Registry Realm", Bearer realm="https://a/t", service=reg , error=x')
    assert [c.scheme for c in challenges] == ["basic", "bearer"]
    assert challenges[0].parameters == {"realm": "Registry Realm"}
    assert challenges[1].parameters == {"realm": "https://a/t", "service": "reg", "error": "x"}


def test_quoted_values_keep_commas_and_escaped_quotes():
    [challenge] = parse_challenges(r'Bearer realm="a\"b",scope="repository:x:pull,push"')
    assert challenge.parameters == {"realm": 'a"b', "scope": "repository:x:pull,push"}


@pytest.mark.parametrize("header", ["", "   ", "=", '"quoted"', ",,,"])
def test_malformed_challenges_parse_to_nothing_without_raising(header):
    assert parse_challenges(header) == []


def test_scheme_names_are_case_insensitive():
    assert parse_challenges("BASIC realm=x")[0].scheme == "basic"


def docker_config(auths: dict) -> bytes:
    return json.dumps({"auths": auths}).encode()


def test_keyring_reads_auth_and_username_password_forms():
    keyring = Keyring()
    keyring.add_docker_config(docker_config({
        "127.0.0.1:5000": {"auth": base64.b64encode(b"alice:s3cret:x").decode()},
        "https://ghcr.io": {"username": "bob", "password": "pw"},
    }), "secret default/pull")
    assert keyring.lookup("127.0.0.1:5000", "team/app") == [Credentials("alice", "s3cret:x")]
    assert keyring.lookup("ghcr.io", "org/app") == [Credentials("bob", "pw")]
    assert keyring.lookup("quay.io", "org/app") == []


def test_docker_hub_spellings_are_one_registry():
    keyring = Keyring()
    keyring.add_docker_config(docker_config({"https://index.docker.io/v1/": {"username": "u", "password": "p"}}), "s")
    assert keyring.lookup("docker.io", "library/nginx") == [Credentials("u", "p")]


def test_the_longest_matching_key_comes_first_and_globs_match_one_label():
    keyring = Keyring()
    keyring.add("*.example.com", Credentials("glob", "1"))
    keyring.add("reg.example.com/team", Credentials("team", "2"))
    keyring.add("reg.example.com/other", Credentials("other", "3"))
    assert [c.username for c in keyring.lookup("reg.example.com", "team/app")] == ["team", "glob"]
    assert keyring.lookup("a.b.example.com", "team/app") == []


@pytest.mark.parametrize("document, message", [
    (b"{not json", "not valid JSON"),
    (b"[]", "must be a JSON object"),
    (docker_config({"r": {"auth": "!!!"}}), "not base64"),
    (docker_config({"r": {"auth": base64.b64encode(b"nocolon").decode()}}), "no ':'"),
    (docker_config({"r": "text"}), "must be an object"),
])
def test_bad_docker_configs_name_the_secret_and_the_field(document, message):
    with pytest.raises(AuthConfigError, match=message) as raised:
        Keyring().add_docker_config(document, "secret default/pull")
    assert "secret default/pull" in str(raised.value)
