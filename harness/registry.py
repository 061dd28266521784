"""A real OCI registry on 127.0.0.1 for the image tests and benchmarks (Debian's docker-registry,
v2.8), started on a free port with its own config and storage, plain HTTP or TLS + htpasswd, and
images for it built here from busybox-static as OCI layouts and copied in with skopeo."""

from __future__ import annotations

import datetime
import gzip
import hashlib
import io
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalRegistry:
    def __init__(self, tls_auth: tuple[str, str] | None = None):
        self.directory = tempfile.mkdtemp(prefix="minikube-py-registry-")
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.credentials = tls_auth
        self.ca_file = ""
        self.process: subprocess.Popen | None = None

    def start(self) -> "LocalRegistry":
        config = {"version": 0.1, "log": {"level": "error"},
                  "storage": {"filesystem": {"rootdirectory": os.path.join(self.directory, "storage")},
                              "delete": {"enabled": True}},
                  "http": {"addr": self.host}}
        if self.credentials:
            self.ca_file = self._certificate()
            config["http"]["tls"] = {"certificate": self.ca_file, "key": os.path.join(self.directory, "key.pem")}
            user, password = self.credentials
            htpasswd = subprocess.run(["htpasswd", "-Bbn", user, password], capture_output=True, text=True, check=True)
            with open(os.path.join(self.directory, "htpasswd"), "w") as file:
                file.write(htpasswd.stdout)
            config["auth"] = {"htpasswd": {"realm": "minikube-py-test", "path": os.path.join(self.directory, "htpasswd")}}
        config_path = os.path.join(self.directory, "config.yml")
        with open(config_path, "w") as file:
            json.dump(config, file)  # YAML reads JSON
        self.process = subprocess.Popen(["docker-registry", "serve", config_path], stdout=subprocess.DEVNULL,
                                        stderr=open(os.path.join(self.directory, "registry.log"), "w"))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise AssertionError(f"docker-registry did not start on {self.host}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        shutil.rmtree(self.directory, ignore_errors=True)

    def _certificate(self) -> str:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "minikube-py test registry")])
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                       .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                       .not_valid_after(now + datetime.timedelta(days=1))
                       .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
                       .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                       .sign(key, hashes.SHA256()))
        with open(os.path.join(self.directory, "key.pem"), "wb") as file:
            file.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
        path = os.path.join(self.directory, "cert.pem")
        with open(path, "wb") as file:
            file.write(certificate.public_bytes(serialization.Encoding.PEM))
        return path

    def push(self, layout: str, tag: str, repository: str) -> None:
        """skopeo copy of the layout's `tag` (every platform of an index) to repository:tag here."""
        command = ["skopeo", "copy", "--all", "--dest-tls-verify=false", "--quiet"]
        if self.credentials:
            command += ["--dest-creds", ":".join(self.credentials)]
        subprocess.run([*command, f"oci:{layout}:{tag}", f"docker://{self.host}/{repository}:{tag}"],
                       check=True, capture_output=True, timeout=60)

    def blob_data_path(self, digest: str) -> str:
        hex_digest = digest.removeprefix("sha256:")
        return os.path.join(self.directory, "storage", "docker", "registry", "v2", "blobs", "sha256", hex_digest[:2],
                            hex_digest, "data")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(files: dict[str, tuple[bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class OciLayout:
    """An OCI image layout on disk: images by tag, single-platform or an index of several."""

    def __init__(self, directory: str):
        self.directory = directory
        os.makedirs(os.path.join(directory, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(directory, "oci-layout"), "w") as file:
            json.dump({"imageLayoutVersion": "1.0.0"}, file)
        self.index: list[dict] = []

    def blob(self, data: bytes) -> dict:
        digest = sha256(data)
        with open(os.path.join(self.directory, "blobs", "sha256", digest[7:]), "wb") as file:
            file.write(data)
        return {"digest": digest, "size": len(data)}

    def image(self, layers: list[bytes], config: dict, architecture: str = "amd64") -> dict:
        """A manifest descriptor for an image of gzip layers (uncompressed tars given)."""
        layer_descriptors = [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **self.blob(gzip.compress(tar, mtime=0))}
                             for tar in layers]
        config_blob = json.dumps({"architecture": architecture, "os": "linux", "config": config,
                                  "rootfs": {"type": "layers", "diff_ids": [sha256(tar) for tar in layers]}}).encode()
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **self.blob(config_blob)},
                               "layers": layer_descriptors}).encode()
        return {"mediaType": "application/vnd.oci.image.manifest.v1+json", **self.blob(manifest),
                "platform": {"architecture": architecture, "os": "linux"}}

    def tag(self, tag: str, descriptors: list[dict]) -> None:
        if len(descriptors) == 1:
            descriptor = dict(descriptors[0])
        else:
            index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                                "manifests": descriptors}).encode()
            descriptor = {"mediaType": "application/vnd.oci.image.index.v1+json", **self.blob(index)}
        descriptor.pop("platform", None)
        descriptor["annotations"] = {"org.opencontainers.image.ref.name": tag}
        self.index = [entry for entry in self.index if entry["annotations"]["org.opencontainers.image.ref.name"] != tag]
        self.index.append(descriptor)
        with open(os.path.join(self.directory, "index.json"), "w") as file:
            json.dump({"schemaVersion": 2, "manifests": self.index}, file)
