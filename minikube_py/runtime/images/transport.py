"""httpx's transport interface over urllib3's connection pools, for registry traffic.

The registry client keeps httpx's API (requests, redirects, auth retries, `MockTransport` in the
unit tests); only the bytes on the wire go through urllib3 here. A layer blob is most of a
pull's bytes, and httpx's own HTTP/1.1 stack (h11) reads the socket 64 KiB at a time and passes
every piece through several Python-level buffers: on a loaded 2-core machine that made a
100 MB download cost more than skopeo's whole copy. urllib3 reads straight from the socket's
buffered file in the sizes the caller asks for (1 MiB), in C.

Errors are raised as httpx's exception types, so retries and messages do not change: a refused
connection or a TLS failure is `httpx.ConnectError` (the message keeps "SSL" for the latter),
timeouts are `ConnectTimeout` / `ReadTimeout`, a connection cut mid-body is `ReadError`.
Redirects are left to httpx (`redirect=False` here), and content encodings too
(`decode_content=False`), so a response reads the same as through httpx's own transport.
"""

from __future__ import annotations

import contextlib
import ssl
import warnings
from typing import Iterator

import httpx
import urllib3
from urllib3 import exceptions as urllib3_errors

READ_SIZE = 1 << 20
POOL_SIZE = 8  # connections kept per host: the parallel layer downloads plus manifests and tokens

# A registry with `insecure_skip_verify: true` in registries.yaml is unverified by the user's choice;
# urllib3 would warn on every request to it.
warnings.filterwarnings("ignore", category=urllib3_errors.InsecureRequestWarning)


@contextlib.contextmanager
def _as_httpx_errors(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except urllib3_errors.SSLError as error:
        raise httpx.ConnectError(f"SSL: {_reason(error)}", request=request) from None
    except urllib3_errors.NewConnectionError as error:
        raise httpx.ConnectError(_reason(error), request=request) from None
    except urllib3_errors.ConnectTimeoutError as error:
        raise httpx.ConnectTimeout(_reason(error), request=request) from None
    except urllib3_errors.ReadTimeoutError as error:
        raise httpx.ReadTimeout(_reason(error), request=request) from None
    except (urllib3_errors.ProtocolError, urllib3_errors.DecodeError) as error:
        raise httpx.ReadError(_reason(error), request=request) from None
    except (urllib3_errors.HTTPError, OSError) as error:
        raise httpx.NetworkError(f"{type(error).__name__}: {_reason(error)}", request=request) from None


def _reason(error: Exception) -> str:
    """The cause in httpx's words ("[Errno 111] Connection refused"), without urllib3's pool prefix."""
    if error.__cause__ is not None and str(error.__cause__):
        return str(error.__cause__)
    return str(error).split("): ", 1)[-1]


class _ResponseBody(httpx.SyncByteStream):
    def __init__(self, response: urllib3.BaseHTTPResponse, request: httpx.Request):
        self.response, self.request = response, request
        self.finished = False

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx_errors(self.request):
            while chunk := self.response.read(READ_SIZE):
                yield chunk
        self.finished = True

    def close(self) -> None:
        if not self.finished:
            self.response.close()  # unread bytes on the connection: it cannot serve another request
        self.response.release_conn()


class Urllib3Transport(httpx.BaseTransport):
    """One connection pool manager per TLS setting (`verify` as httpx takes it)."""

    def __init__(self, verify: ssl.SSLContext | bool = True):
        if verify is False:
            self.pools = urllib3.PoolManager(maxsize=POOL_SIZE, cert_reqs=ssl.CERT_NONE, assert_hostname=False,
                                             retries=False)
        elif isinstance(verify, ssl.SSLContext):
            self.pools = urllib3.PoolManager(maxsize=POOL_SIZE, ssl_context=verify, retries=False)
        else:
            self.pools = urllib3.PoolManager(maxsize=POOL_SIZE, retries=False)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        headers = dict(request.headers)
        framed = any(name.lower() in ("content-length", "transfer-encoding") for name in headers)
        with _as_httpx_errors(request):
            response = self.pools.urlopen(
                request.method, str(request.url), body=request.stream if framed else None, headers=headers,
                redirect=False, retries=False, preload_content=False, decode_content=False,
                timeout=urllib3.Timeout(connect=timeouts.get("connect"), read=timeouts.get("read")))
        return httpx.Response(response.status, headers=list(response.headers.items()),
                              stream=_ResponseBody(response, request),
                              extensions={"http_version": b"HTTP/1.1", "reason_phrase": response.reason.encode()
                                          if response.reason else b""})

    def close(self) -> None:
        self.pools.clear()
