"""Bound ServiceAccount tokens: the TokenRequest API and the signed JWTs behind it.

kubelet asks `POST /api/v1/namespaces/NS/serviceaccounts/NAME/token` for every projected
`serviceAccountToken` (and for the default `kube-api-access-*` volume); the API server signs a JWT
with its service-account key and Kubernetes' claims (iss, sub, aud, exp, iat, nbf, jti and the
`kubernetes.io` claim naming the namespace, the ServiceAccount, the pod and its node), bound to
the pod: once the pod or the ServiceAccount is gone (or re-created with another uid), the token
no longer authenticates. A token with the API's audience is a bearer token for the TLS door
(auth.py), as user `system:serviceaccount:NS:NAME` in the groups `system:serviceaccounts` and
`system:serviceaccounts:NS`; authorization then refuses it everything, as Kubernetes' default RBAC
gives a ServiceAccount no rights on the API's resources.

The key is an EC P-256 key made once in `<home>/pki/service-account.key` (0600); tokens are ES256,
one of the algorithms kube-apiserver's `--service-account-key-file` accepts, with the `kid` it
derives from the public key. PyJWT does the JOSE part.
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from minikube_py.api import errors
from minikube_py.api.times import format_time
from minikube_py.clock import Clock

ISSUER = "https://kubernetes.default.svc.cluster.local"
API_AUDIENCES = (ISSUER,)  # kube-apiserver's --api-audiences default to the issuer
ALGORITHM = "ES256"
SIGNING_KEY_FILE = "service-account.key"
MIN_EXPIRATION_SECONDS = 10 * 60
MAX_EXPIRATION_SECONDS = 1 << 32
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
TOKEN_REQUEST_API_VERSION = "authentication.k8s.io/v1"


def load_or_create_signing_key(path: str) -> ec.EllipticCurvePrivateKey:
    """The service-account signing key at `path`, made (0600, in a 0700 directory) when missing."""
    try:
        with open(path, "rb") as file:
            key = serialization.load_pem_private_key(file.read(), password=None)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    temporary = path + ".tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
    os.replace(temporary, path)
    return key


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """kube-apiserver's keyIDFromPublicKey: unpadded base64url of SHA-256 over the DER public key."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")


@dataclass(frozen=True)
class ServiceAccountUser:
    name: str
    groups: tuple[str, ...]


class TokenIssuer:
    """Signs and checks the cluster's ServiceAccount tokens."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, clock: Clock | None = None):
        self.key = key
        self.public_key = key.public_key()
        self.key_id = key_id(self.public_key)
        self.clock = clock or Clock()

    def sign(self, namespace: str, service_account: dict, audiences: list[str], expiration_seconds: int,
             pod: dict | None = None, node: dict | None = None) -> tuple[str, int]:
        """A token and its expiry (epoch seconds)."""
        now = int(self.clock.now())
        expires = now + expiration_seconds
        private: dict[str, Any] = {
            "namespace": namespace,
            "serviceaccount": {"name": service_account["metadata"]["name"], "uid": service_account["metadata"]["uid"]},
        }
        if pod is not None:
            private["pod"] = {"name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}
        if node is not None:
            private["node"] = {"name": node["metadata"]["name"], "uid": node["metadata"].get("uid", "")}
        claims = {
            "iss": ISSUER,
            "sub": f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{service_account['metadata']['name']}",
            "aud": list(audiences),
            "exp": expires,
            "iat": now,
            "nbf": now,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": private,
        }
        token = jwt.encode(claims, self.key, algorithm=ALGORITHM, headers={"kid": self.key_id})
        return token, expires

    def verify(self, token: str, audiences: tuple[str, ...] = API_AUDIENCES) -> dict | None:
        """The claims of a token this issuer signed, still valid and for one of `audiences`; else None."""
        try:
            # Times are checked here against the cluster's clock rather than by PyJWT's.
            claims = jwt.decode(token, self.public_key, algorithms=[ALGORITHM], audience=list(audiences), issuer=ISSUER,
                                options={"require": ["exp", "iat", "nbf", "sub", "aud"], "verify_exp": False,
                                         "verify_nbf": False, "verify_iat": False})
        except jwt.PyJWTError:
            return None
        now = self.clock.now()
        if not isinstance(claims.get("exp"), int) or not isinstance(claims.get("nbf"), int):
            return None
        return claims if claims["nbf"] <= now < claims["exp"] else None


def _invalid(name: str, problems: list[tuple[str, str]]) -> errors.Invalid:
    rendered = [f"{path}: {message}" for path, message in problems]
    summary = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    return errors.Invalid(f'TokenRequest.authentication.k8s.io "{name}" is invalid: {summary}', problems)


def _bound_pod(registry, namespace: str, reference: dict) -> dict:
    kind = reference.get("kind")
    if kind != "Pod":
        raise _invalid(reference.get("name") or "",
                       [("spec.boundObjectRef.kind", f'Unsupported value: "{kind}": supported values: "Pod"')])
    pod = registry.get("pods", namespace, reference.get("name") or "")
    uid = reference.get("uid")
    if uid and uid != pod["metadata"]["uid"]:
        raise errors.Conflict(
            f'Operation cannot be fulfilled on Pod "{reference.get("name")}": the UID in the bound object reference '
            f"({uid}) does not match the UID in record. The object might have been deleted and then recreated")
    return pod


def token_request(registry, issuer: TokenIssuer | None, namespace: str, name: str, body: Any) -> dict:
    """POST serviceaccounts/NAME/token: a TokenRequest in, the same with `status.token` out."""
    if issuer is None:
        raise errors.ServiceUnavailable("this API server signs no service account tokens")
    if not isinstance(body, dict):
        raise errors.BadRequest("the body of a token request must be a TokenRequest (authentication.k8s.io/v1)")
    spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
    audiences = spec.get("audiences") or list(API_AUDIENCES)
    expiration = spec.get("expirationSeconds", 3600)
    problems = []
    if not isinstance(audiences, list) or not all(isinstance(audience, str) for audience in audiences):
        problems.append(("spec.audiences", "Invalid value: must be a list of strings"))
    if not isinstance(expiration, int) or isinstance(expiration, bool):
        problems.append(("spec.expirationSeconds", "Invalid value: must be an integer number of seconds"))
    elif expiration < MIN_EXPIRATION_SECONDS:
        problems.append(("spec.expirationSeconds", f"Invalid value: {expiration}: may not specify a duration less than 10 minutes"))
    elif expiration > MAX_EXPIRATION_SECONDS:
        problems.append(("spec.expirationSeconds", f"Invalid value: {expiration}: may not specify a duration larger than 2^32 seconds"))
    if problems:
        raise _invalid(name, problems)
    service_account = registry.get("serviceaccounts", namespace, name)
    reference = spec.get("boundObjectRef")
    pod = node = None
    if isinstance(reference, dict):
        pod = _bound_pod(registry, namespace, reference)
        node_name = (pod.get("spec") or {}).get("nodeName")
        if node_name:
            try:
                node = registry.get("nodes", None, node_name)
            except errors.NotFound:
                node = {"metadata": {"name": node_name}}
    token, expires = issuer.sign(namespace, service_account, audiences, expiration, pod, node)
    return {
        "kind": "TokenRequest",
        "apiVersion": TOKEN_REQUEST_API_VERSION,
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
        "spec": {**spec, "audiences": audiences, "expirationSeconds": expiration},
        "status": {"token": token, "expirationTimestamp": format_time(expires)},
    }


def service_account_user(registry, issuer: TokenIssuer, token: str) -> ServiceAccountUser | None:
    """The user a ServiceAccount token proves, if it is valid and what it is bound to still exists."""
    claims = issuer.verify(token)
    if claims is None:
        return None
    private = claims.get("kubernetes.io")
    if not isinstance(private, dict):
        return None
    namespace = private.get("namespace")
    account = private.get("serviceaccount") or {}
    try:
        service_account = registry.get("serviceaccounts", namespace, account.get("name"))
        if service_account["metadata"]["uid"] != account.get("uid"):
            return None
        bound = private.get("pod")
        if isinstance(bound, dict):
            pod = registry.get("pods", namespace, bound.get("name"))
            if pod["metadata"]["uid"] != bound.get("uid") or pod["metadata"].get("deletionTimestamp"):
                return None
    except (errors.NotFound, KeyError, TypeError):
        return None
    name = f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{account.get('name')}"
    return ServiceAccountUser(name, ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"))
