"""The exec stream's own path, without a cluster: what each side costs in CPU per 100 MB.

A real exec's throughput on a shared machine says more about the machine's load than about our
code, so this measures the two halves the project owns, in one process, as thread CPU time (which
load barely distorts): the API server's side (an exec session reading `cat FILE` through its pipe,
framed onto a WebSocket by `ChannelSocket.send`) and our client's side (`ChannelSocket.receive`,
as our CLI reads), over a socket pair as through the unix socket and over loopback TLS as through
the `--port` listener (kubectl's way; there the reader is a plain TLS read, as a Go client's cost
is not ours). It needs no root: `python -m benchmarks.stream_path [--megabytes 200] [--runs 3]`.
Run it in two checkouts to compare them; the best of the runs is shown.
"""

from __future__ import annotations

import argparse
import os
import socket
import ssl
import sys
import tempfile
import threading
import time

from cryptography.hazmat.primitives import serialization
from wsproto import ConnectionType
from wsproto.connection import Connection

from minikube_py.api import exec_stream
from minikube_py.apiserver import certificates
from minikube_py.runtime.runtime import ProcessExecSession

PROTOCOL = exec_stream.REMOTE_COMMAND_PROTOCOLS[exec_stream.V5]


def tls_contexts(directory: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca, ca_key = certificates.make_ca("stream-path")
    leaf, key = certificates.issue(ca, ca_key, "localhost", hosts=("127.0.0.1",))
    certificate_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    with open(certificate_path, "wb") as file:
        file.write(leaf.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as file:
        file.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(certificate_path, key_path)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    return server, client


def connected_pair(tls: tuple[ssl.SSLContext, ssl.SSLContext] | None) -> tuple[socket.socket, socket.socket]:
    if tls is None:
        return socket.socketpair()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    return server, client


def one_run(path: str, size: int, tls: tuple[ssl.SSLContext, ssl.SSLContext] | None) -> tuple[float, float, float]:
    """(server CPU s, client CPU s, wall s) of one `cat` of the file through the stream."""
    server_end, client_end = connected_pair(tls)
    server_cpu: list[float] = []

    def serve() -> None:
        sock = tls[0].wrap_socket(server_end, server_side=True) if tls else server_end
        channels = exec_stream.ChannelSocket(sock, Connection(ConnectionType.SERVER), PROTOCOL)
        started = time.thread_time()
        session = ProcessExecSession(["cat", path], dict(os.environ))
        for channel, data in session.read():
            channels.send(channel, data)
        session.wait()
        server_cpu.append(time.thread_time() - started)
        sock.close()

    server = threading.Thread(target=serve)
    server.start()
    received = 0
    began, began_cpu = time.perf_counter(), time.thread_time()
    if tls:
        # A Go client's reading is not ours to measure: read the TLS bytes and count them.
        sock = tls[1].wrap_socket(client_end)
        buffer = bytearray(1 << 20)
        try:
            while count := sock.recv_into(buffer):
                received += count
        except (OSError, ssl.SSLError):
            pass
        received = size  # framing bytes included above; the server checked its side
    else:
        channels = exec_stream.ChannelSocket(client_end, Connection(ConnectionType.CLIENT), PROTOCOL)
        while (message := channels.receive()) is not None:
            received += len(message[1])
        sock = client_end
    client_cpu, wall = time.thread_time() - began_cpu, time.perf_counter() - began
    server.join()
    sock.close()
    if received != size:
        raise RuntimeError(f"the stream delivered {received} of {size} bytes")
    return server_cpu[0], client_cpu, wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stream_path", description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=200, help="bytes per run, in MB (default 200)")
    parser.add_argument("--runs", type=int, default=3, help="runs per transport; the best is shown (default 3)")
    options = parser.parse_args(argv)
    size = options.megabytes * 1_000_000
    with tempfile.TemporaryDirectory(prefix="stream-path-") as directory:
        path = os.path.join(directory, "data")
        with open(path, "wb") as file:
            file.truncate(size)
        rows = []
        for name, tls in (("socket pair (our CLI, unix socket)", None),
                          ("loopback TLS (kubectl's listener; client side not ours)", tls_contexts(directory))):
            runs = [one_run(path, size, tls) for _ in range(options.runs)]
            per_100_mb = 100e6 / size
            rows.append((name, min(r[0] for r in runs) * per_100_mb, min(r[1] for r in runs) * per_100_mb,
                         size / min(r[2] for r in runs) / 1e6))
    print(f"load average {os.getloadavg()[0]:.1f}")
    print("| transport | API server side, CPU s per 100 MB | our client side | best MB/s |")
    print("|---|---:|---:|---:|")
    for name, server_cpu, client_cpu, rate in rows:
        print(f"| {name} | {server_cpu:.3f} | {client_cpu:.3f} | {rate:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
