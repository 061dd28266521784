"""Talking to etcd v3: the members, what their failures mean to an API client, and watch streams.

We speak etcd's own v3 API through its gRPC gateway (JSON over HTTP, served by every etcd on its
client port since 3.4) with etcd3gw, the maintained pure-Python client for it: it brings the
sessions, URLs and the mapping of gateway errors to exceptions. `EtcdMembers` adds what a store
needs on top: several endpoints (a request that cannot reach one member goes to the next), and
etcd's failures turned into the API's Status errors, naming the endpoint and saying whether a
write may have happened (503 when etcd refused or has no leader, 504 when it did not answer in
time, 507 when its space quota is full). `WatchStream` is one etcd watch read line by line, with
the two answers etcd3gw's watcher drops and a store must see: a watch cancelled because its
start revision was compacted, and the stream ending.

Members given as `https://HOST:PORT` are spoken to over TLS, as kube-apiserver does with its
`--etcd-cafile` (the CA that signed etcd's serving certificate; the public CAs without it),
`--etcd-certfile` and `--etcd-keyfile` (the client certificate an etcd started with
`--client-cert-auth` asks for): `EtcdTLS`. A handshake that fails is an error naming the member
and what to check, never "unreachable".
"""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
import threading
from typing import Iterator

import etcd3gw
import requests
from etcd3gw import exceptions as etcd_errors

from minikube_py.api import errors
from minikube_py.store.etcd_endpoints import EtcdTLS, split_endpoint

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 2.0
# etcd gives up on a proposal after about 7 s (5 s request timeout plus leader election), so a
# request without quorum comes back with etcd's own error before this.
REQUEST_TIMEOUT_SECONDS = 15.0
CONNECTIONS_PER_MEMBER = 32


def _tls_problem(detail: str | None) -> str | None:
    """What went wrong in a TLS handshake with an etcd member, and what to check; None when the
    failure was not TLS's."""
    text = detail or ""
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        reason = re.search(r"certificate verify failed: ([^(')\]]*)", text)
        return (f"its certificate is not trusted ({reason.group(1).strip() if reason else 'verify failed'}): "
                "--etcd-cafile must be the CA that signed the etcd members' serving certificates "
                "(etcd's --cert-file), and the certificate must name the host in --store")
    # Go's TLS server asking for a client certificate ends the handshake (an EOF here) or alerts.
    if any(sign in text for sign in ("alert certificate required", "alert bad certificate", "alert unknown ca",
                                     "EOF occurred in violation of protocol")):
        return ("it wants a client certificate it trusts: give --etcd-certfile and --etcd-keyfile of a client "
                "certificate signed by the CA etcd trusts (etcd's --trusted-ca-file)")
    if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
        return "it does not speak TLS on that port: use http:// (or HOST:PORT) for that member in --store"
    if "SSLError" in text or "SSL:" in text or "TLSV1_ALERT" in text:
        return f"the TLS handshake failed ({_reason(text)})"
    return None


def encode(text: str) -> str:
    """Keys and values travel base64-encoded through the gateway."""
    return base64.b64encode(text.encode()).decode()


def decode(text: str) -> str:
    return base64.b64decode(text).decode()


def prefix_end(prefix: str) -> str:
    """The range end covering every key that starts with `prefix` (its last byte plus one)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _reason(detail: str | None) -> str:
    """The heart of a connection failure ("[Errno 111] Connection refused"), not urllib3's whole story."""
    if "Remote end closed connection without response" in (detail or ""):
        return "it hung up without an answer: if it serves TLS, write it https://HOST:PORT in --store"
    match = re.search(r"\[Errno -?\d+\][^'\")]*", detail or "")
    if match:
        return match.group(0).strip()
    return "timed out" if "timed out" in (detail or "") else (detail or "no answer")


def _etcd_message(error: etcd_errors.Etcd3Exception) -> str | None:
    """etcd's own words when the gateway answered (a JSON body), None when nothing answered."""
    try:
        body = json.loads(error.detail_text or "")
    except ValueError:
        return None
    return body.get("error") or body.get("message") if isinstance(body, dict) else None


class EtcdMembers:
    """The etcd members of a store, one gateway client each. Requests go to the current member;
    one that cannot be reached at all (connection refused, reset) moves them to the next member,
    which is safe for every request because nothing was sent. An answer from etcd, even an
    error, is final."""

    def __init__(self, endpoints: list[str], timeout: float = REQUEST_TIMEOUT_SECONDS, tls: EtcdTLS | None = None):
        self.endpoints = list(endpoints)
        self._clients = []
        tls = tls or EtcdTLS()
        for endpoint in self.endpoints:
            scheme, host, port = split_endpoint(endpoint)
            session = requests.Session()
            # Not the environment's proxies or REQUESTS_CA_BUNDLE (which would win over --etcd-cafile).
            session.trust_env = False
            adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=CONNECTIONS_PER_MEMBER)
            session.mount(f"{scheme}://", adapter)
            if scheme == "https":
                session.verify = tls.ca_file or True
                if tls.cert_file and tls.key_file:
                    session.cert = (tls.cert_file, tls.key_file)
            self._clients.append(etcd3gw.Etcd3Client(
                host=host, port=port, protocol=scheme, timeout=(CONNECT_TIMEOUT_SECONDS, timeout),
                api_path="/v3/", session=session))
        self._current = 0
        self._lock = threading.Lock()

    @property
    def described(self) -> str:
        return ",".join(self.endpoints)

    def _order(self) -> list[int]:
        with self._lock:
            first = self._current
        return [(first + offset) % len(self._clients) for offset in range(len(self._clients))]

    def _move_past(self, index: int) -> None:
        with self._lock:
            if self._current == index:
                self._current = (index + 1) % len(self._clients)

    def call(self, path: str, body: dict) -> dict:
        """POST one v3 request (`/kv/txn`, `/kv/range`, ...) and return etcd's answer."""
        unreachable = []
        for index in self._order():
            client = self._clients[index]
            try:
                return client.post(client.get_url(path), json=body)
            except etcd_errors.ConnectionFailedError as error:
                if _etcd_message(error) is not None:
                    raise self.api_error(error, self.endpoints[index]) from None
                problem = _tls_problem(error.detail_text)
                if problem is not None:
                    raise self.tls_error(self.endpoints[index], problem) from None
                unreachable.append(f"{self.endpoints[index]} ({_reason(error.detail_text)})")
                self._move_past(index)
            except etcd_errors.Etcd3Exception as error:
                raise self.api_error(error, self.endpoints[index]) from None
        raise errors.ServiceUnavailable(
            f"the etcd store is unreachable: no member answered at {', '.join(unreachable)}. Start etcd "
            "there, or point --store at members that run (nothing was changed)")

    @staticmethod
    def tls_error(endpoint: str, problem: str) -> errors.ApiError:
        return errors.ServiceUnavailable(f"the etcd store at {endpoint} refused the TLS connection: {problem} "
                                         "(nothing was changed)")

    @staticmethod
    def api_error(error: etcd_errors.Etcd3Exception, endpoint: str) -> errors.ApiError:
        """What an etcd failure means to an API client, in etcd's words and ours."""
        message = _etcd_message(error) or str(error.detail_text)
        if "database space exceeded" in message:
            return errors.InsufficientStorage(
                f"the etcd store at {endpoint} is full ({message}); nothing was changed. Compact and "
                "defragment etcd or raise its --quota-backend-bytes, then disarm the alarm")
        if (isinstance(error, etcd_errors.ConnectionTimeoutError) or "timed out" in message or "deadline" in message
                or "leader changed" in message):
            return errors.Timeout(
                f"the etcd store at {endpoint} did not answer in time ({message}); the change may or may not "
                "have been made: read the object again before retrying")
        if (isinstance(error, etcd_errors.ConnectionFailedError) or "no leader" in message or "unavailable" in message
                or "proposal dropped" in message):
            return errors.ServiceUnavailable(
                f"the etcd store at {endpoint} cannot take writes now ({message}); nothing was changed. "
                "A majority of its members must run; try again when they do")
        return errors.ApiError(f"the etcd store at {endpoint} failed: {message}")

    def watch(self, key: str, range_end: str, start_revision: int) -> "WatchStream":
        """Open a watch on [key, range_end) from `start_revision` on the first member that answers."""
        failures = []
        for index in self._order():
            client = self._clients[index]
            request = {"create_request": {"key": encode(key), "range_end": encode(range_end),
                                          "start_revision": start_revision}}
            try:
                response = client.session.post(client.get_url("/watch"), json=request, stream=True,
                                               timeout=(CONNECT_TIMEOUT_SECONDS, None))
            except requests.RequestException as error:
                problem = _tls_problem(str(error))
                if problem is not None:
                    raise self.tls_error(self.endpoints[index], problem) from None
                failures.append(f"{self.endpoints[index]} ({_reason(str(error))})")
                self._move_past(index)
                continue
            if response.status_code != 200:
                failures.append(f"{self.endpoints[index]} (HTTP {response.status_code}: {response.text[:200]})")
                response.close()
                self._move_past(index)
                continue
            return WatchStream(response, self.endpoints[index])
        raise errors.ServiceUnavailable(f"no etcd member would open a watch: {', '.join(failures)}")


class WatchStream:
    """One open etcd watch: `responses()` yields each WatchResponse (`events`, `canceled`,
    `compact_revision`, ...) as it arrives and ends when the stream does; `close()`, from any
    thread, ends it at once."""

    def __init__(self, response: requests.Response, endpoint: str):
        self._response = response
        self.endpoint = endpoint

    def responses(self) -> Iterator[dict]:
        for line in self._response.iter_lines(chunk_size=None):
            if not line.strip():
                continue
            message = json.loads(line)
            if "error" in message:
                raise errors.ServiceUnavailable(
                    f"the etcd watch at {self.endpoint} failed: {message['error'].get('message', message['error'])}")
            yield message["result"]

    def close(self) -> None:
        # Shutting the socket down wakes the thread blocked reading it; closing alone would not.
        try:
            duplicate = socket.fromfd(self._response.raw.fileno(), socket.AF_INET, socket.SOCK_STREAM)
            try:
                duplicate.shutdown(socket.SHUT_RDWR)
            finally:
                duplicate.close()
        except (OSError, ValueError):
            pass
        self._response.close()
