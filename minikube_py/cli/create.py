"""`create namespace|configmap|secret`: objects made from command-line flags, as kubectl makes them.

A ConfigMap or a Secret is built from literals (`--from-literal=key=value`), files
(`--from-file=[key=]path`, a directory adds each regular file in it) and env files
(`--from-env-file=path`, `KEY=value` lines), with kubectl's rules and messages: keys must be
valid file names, a key may come only once, a file that is not UTF-8 goes to a ConfigMap's
`binaryData`. `secret tls` reads a certificate and its key, `secret docker-registry` writes the
`.dockerconfigjson` a registry login needs. `--dry-run=client` prints what would be sent
(`-o yaml|json|name`) and sends nothing. The generators are pure functions of the flags and the
files, tested as such; `run_*` send the result and print `configmap/NAME created`.
"""

from __future__ import annotations

import argparse
import base64
import json
import os

from minikube_py.cli.apply import DRY_RUN_CHOICES, DRY_RUN_SUFFIX
from minikube_py.cli.context import CommandError, Context, Subcommands
from minikube_py.cli.get import dump
from minikube_py.cli.jobs import register_create_job

DEFAULT_DOCKER_SERVER = "https://index.docker.io/v1/"
OUTPUT_CHOICES = ("yaml", "json", "name")


def register(subcommands: Subcommands) -> None:
    create = subcommands.group("create", "create an object from the command line")
    namespace = create.add("namespace", "create a namespace", aliases=("ns",))
    namespace.add_argument("name", metavar="NAME", help="the namespace's name (a DNS-1123 label)")
    add_dry_run_flags(namespace)
    namespace.set_defaults(run=run_create_namespace)
    register_create_job(create)

    config_map = create.add("configmap", "create a ConfigMap from literals, files or env files", namespaced=True,
                            aliases=("cm",))
    config_map.add_argument("name", metavar="NAME", help="the ConfigMap's name")
    add_source_flags(config_map)
    add_dry_run_flags(config_map)
    config_map.set_defaults(run=run_create_config_map)

    secret = create.group("secret", "create a Secret: generic, tls or docker-registry")
    generic = secret.add("generic", "create a Secret from literals, files or env files", namespaced=True)
    generic.add_argument("name", metavar="NAME", help="the Secret's name")
    add_source_flags(generic)
    generic.add_argument("--type", help="the Secret's type (default Opaque)")
    add_dry_run_flags(generic)
    generic.set_defaults(run=run_create_secret_generic)

    tls = secret.add("tls", "create a kubernetes.io/tls Secret from a certificate and its key", namespaced=True)
    tls.add_argument("name", metavar="NAME", help="the Secret's name")
    tls.add_argument("--cert", required=True, metavar="PATH", help="the PEM certificate (chain) file")
    tls.add_argument("--key", required=True, metavar="PATH", help="the PEM private key of the certificate")
    add_dry_run_flags(tls)
    tls.set_defaults(run=run_create_secret_tls)

    registry = secret.add("docker-registry", "create a kubernetes.io/dockerconfigjson Secret for an image registry",
                          namespaced=True)
    registry.add_argument("name", metavar="NAME", help="the Secret's name")
    registry.add_argument("--docker-server", default=DEFAULT_DOCKER_SERVER, metavar="URL",
                          help=f"the registry's address (default {DEFAULT_DOCKER_SERVER})")
    registry.add_argument("--docker-username", default="", metavar="NAME", help="the user name for the registry")
    registry.add_argument("--docker-password", default="", metavar="PASSWORD", help="the password for the registry")
    registry.add_argument("--docker-email", default="", metavar="EMAIL", help="an email address for the registry")
    registry.add_argument("--from-file", action="append", default=[], metavar="[KEY=]PATH",
                          help="take .dockerconfigjson from a file instead (repeatable)")
    add_dry_run_flags(registry)
    registry.set_defaults(run=run_create_secret_docker_registry)


def add_source_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from-literal", action="append", default=[], metavar="KEY=VALUE",
                        help="a key and its value (repeatable)")
    parser.add_argument("--from-file", action="append", default=[], metavar="[KEY=]PATH",
                        help="a file's content under its name or KEY; a directory adds each regular file in it "
                             "(repeatable)")
    parser.add_argument("--from-env-file", action="append", default=[], metavar="PATH",
                        help="KEY=VALUE lines (# comments, blank lines skipped; a bare KEY takes the value from "
                             "this shell's environment) (repeatable)")


def add_dry_run_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", nargs="?", const="client", default="none", choices=DRY_RUN_CHOICES,
                        help="client: print the object that would be sent, and send nothing; "
                             "server: send it for the server to default and validate, and store nothing")
    parser.add_argument("-o", "--output", choices=OUTPUT_CHOICES,
                        help="print the object (yaml, json) or its TYPE/NAME instead of the created line")


# -- sources ----------------------------------------------------------------------------------


def parse_literal(source: str) -> tuple[str, str]:
    """`key=value` (the value may hold more `=`)."""
    key, equals, value = source.partition("=")
    if not equals or not key:
        raise CommandError(f"invalid literal source {source}, expected key=value")
    return key, value


def file_sources(source: str) -> list[tuple[str, str]]:
    """(key, path) pairs of one `--from-file`: `path`, `key=path`, or a directory's regular files."""
    key, equals, path = source.partition("=")
    if not equals:
        key, path = "", source
    elif not key:
        raise CommandError(f"key name for file path {path} missing")
    elif not path:
        raise CommandError(f"file path for key name {key} missing")
    if not os.path.exists(path):
        raise CommandError(f"error reading {path}: no such file or directory")
    if os.path.isdir(path):
        if key:
            raise CommandError("cannot give a key name for a directory path")
        return [(name, os.path.join(path, name)) for name in sorted(os.listdir(path))
                if os.path.isfile(os.path.join(path, name)) and not os.path.islink(os.path.join(path, name))]
    return [(key or os.path.basename(path), path)]


def env_file_pairs(path: str) -> list[tuple[str, str]]:
    """kubectl's env file: `KEY=VALUE` lines; `#` comments and blank lines skipped; leading blanks
    dropped; a line without `=` takes the value from this process's environment."""
    try:
        with open(path, "rb") as file:
            content = file.read()
    except OSError as error:
        raise CommandError(f"error reading {path}: {error.strerror or error}") from None
    text = content.decode("utf-8", errors="replace").removeprefix("\ufeff")
    from minikube_py.api.validation import env_var_name_errors  # builds the models: only when used

    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key, equals, value = line.partition("=")
        problems = env_var_name_errors(key)
        if problems:
            raise CommandError(f'env file {path} line {number}: "{key}" is not a valid key name: {";".join(problems)}')
        pairs.append((key, value if equals else os.environ.get(key, "")))
    return pairs


def read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as error:
        raise CommandError(f"error reading {path}: {error.strerror or error}") from None


def source_items(literals: list[str], files: list[str], env_files: list[str]) -> list[tuple[str, bytes]]:
    """Every (key, content) the flags name, in kubectl's order: files, literals, env files."""
    items: list[tuple[str, bytes]] = []
    for source in files:
        items += [(key, read_bytes(path)) for key, path in file_sources(source)]
    for source in literals:
        key, value = parse_literal(source)
        items.append((key, value.encode()))
    for path in env_files:
        items += [(key, value.encode()) for key, value in env_file_pairs(path)]
    return items


def _check_key(key: str, kind: str) -> None:
    from minikube_py.api.networking_validation import config_key_errors  # builds the models: only when used

    problems = config_key_errors(key)
    if problems:
        raise CommandError(f'"{key}" is not a valid key name for a {kind}: {";".join(problems)}')


def object_metadata(name: str, namespace: str | None) -> dict:
    """kubectl's generated metadata: the name, the namespace only when -n was given."""
    metadata: dict = {"name": name, "creationTimestamp": None}
    if namespace:
        metadata["namespace"] = namespace
    return metadata


def config_map_from_sources(name: str, namespace: str | None, literals: list[str], files: list[str],
                            env_files: list[str]) -> dict:
    data: dict[str, str] = {}
    binary_data: dict[str, str] = {}
    for key, content in source_items(literals, files, env_files):
        _check_key(key, "ConfigMap")
        for existing, field in ((data, "Data"), (binary_data, "BinaryData")):
            if key in existing:
                raise CommandError(f'cannot add key "{key}", another key by that name already exists in {field} '
                                   f'for ConfigMap "{name}"')
        try:
            data[key] = content.decode("utf-8")
        except UnicodeDecodeError:
            binary_data[key] = base64.b64encode(content).decode()
    config_map: dict = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": object_metadata(name, namespace)}
    if data:
        config_map["data"] = data
    if binary_data:
        config_map["binaryData"] = binary_data
    return config_map


def secret_from_items(name: str, namespace: str | None, items: list[tuple[str, bytes]],
                      secret_type: str | None) -> dict:
    data: dict[str, str] = {}
    for key, content in items:
        _check_key(key, "Secret")
        if key in data:
            raise CommandError(f"cannot add key {key}, another key by that name already exists")
        data[key] = base64.b64encode(content).decode()
    secret: dict = {"apiVersion": "v1", "kind": "Secret", "metadata": object_metadata(name, namespace)}
    if data:
        secret["data"] = data
    if secret_type:
        secret["type"] = secret_type
    return secret


def tls_secret(name: str, namespace: str | None, cert_path: str, key_path: str) -> dict:
    """A kubernetes.io/tls Secret, after checking that the key belongs to the certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    certificate_pem, key_pem = read_bytes(cert_path), read_bytes(key_path)
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as error:
        raise CommandError(f"failed to load key pair tls: {error}") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if certificate.public_key().public_bytes(serialization.Encoding.PEM, public) != \
            key.public_key().public_bytes(serialization.Encoding.PEM, public):
        raise CommandError("failed to load key pair tls: private key does not match public key")
    return secret_from_items(name, namespace, [("tls.crt", certificate_pem), ("tls.key", key_pem)],
                             "kubernetes.io/tls")


def docker_config_json(server: str, username: str, password: str, email: str) -> bytes:
    """The `.dockerconfigjson` `docker login` writes: one entry under `auths` for the server."""
    entry = {"username": username, "password": password}
    if email:
        entry["email"] = email
    entry["auth"] = base64.b64encode(f"{username}:{password}".encode()).decode()
    return json.dumps({"auths": {server: entry}}, separators=(",", ":")).encode()


def docker_registry_secret(name: str, namespace: str | None, server: str, username: str, password: str,
                           email: str, files: list[str]) -> dict:
    if files:
        items = [(key, read_bytes(path)) for source in files for key, path in file_sources(source)]
    else:
        if not (username and password and server):
            raise CommandError("either --from-file or the combination of --docker-username, --docker-password "
                               "and --docker-server is required")
        items = [(".dockerconfigjson", docker_config_json(server, username, password, email))]
    return secret_from_items(name, namespace, items, "kubernetes.io/dockerconfigjson")


# -- sending ----------------------------------------------------------------------------------


def send(context: Context, args: argparse.Namespace, plural: str, obj: dict, verb: str = "created") -> int:
    """Create `obj` (unless --dry-run=client) and print kubectl's line or the object."""
    kind = obj["kind"].lower()
    if args.dry_run == "client":
        created = obj
    else:
        body = {**obj, "metadata": {key: value for key, value in obj["metadata"].items() if value is not None}}
        namespace = None if plural == "namespaces" else (obj["metadata"].get("namespace") or context.default_namespace)
        created = context.transport.create(plural, namespace, body, dry_run=args.dry_run == "server")
        created = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], **created}
    if args.output in ("yaml", "json"):
        print(dump(created, args.output))
    elif args.output == "name":
        print(f"{kind}/{obj['metadata']['name']}")
    else:
        print(f"{kind}/{obj['metadata']['name']} {verb}{DRY_RUN_SUFFIX[args.dry_run]}")
    return 0


def run_create_namespace(args: argparse.Namespace, context: Context) -> int:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": object_metadata(args.name, None)}
    return send(context, args, "namespaces", namespace)


def run_create_config_map(args: argparse.Namespace, context: Context) -> int:
    config_map = config_map_from_sources(args.name, context.namespace, args.from_literal, args.from_file,
                                         args.from_env_file)
    return send(context, args, "configmaps", config_map)


def run_create_secret_generic(args: argparse.Namespace, context: Context) -> int:
    items = source_items(args.from_literal, args.from_file, args.from_env_file)
    return send(context, args, "secrets", secret_from_items(args.name, context.namespace, items, args.type))


def run_create_secret_tls(args: argparse.Namespace, context: Context) -> int:
    return send(context, args, "secrets", tls_secret(args.name, context.namespace, args.cert, args.key))


def run_create_secret_docker_registry(args: argparse.Namespace, context: Context) -> int:
    secret = docker_registry_secret(args.name, context.namespace, args.docker_server, args.docker_username,
                                    args.docker_password, args.docker_email, args.from_file)
    return send(context, args, "secrets", secret)
