"""The `image` commands: pull, ls, inspect, rm, prune, import, load, tag.

Images are host-local files in the node's store (`runtime.images`), so these commands work on
the store directly and need no running daemon, as `ctr images` works beside kubectl. A pull
from here and the daemon's pulls share layers through the store's per-layer locks.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import threading
import time

from minikube_py.cli.context import CommandError, Context, Subcommands
from minikube_py.cli.tables import Table


def register(subcommands: Subcommands) -> None:
    images = subcommands.group("image", "manage the host-local images pods run from")
    pull = images.add("pull", "pull an image from its registry into the node's store")
    pull.add_argument("reference", metavar="NAME[:TAG|@DIGEST]", help="the image, as a pod names it")
    pull.add_argument("-q", "--quiet", action="store_true", help="print only the image's name when done")
    pull.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                      help="the platform to pick from a multi-platform image (default: this host's)")
    pull.add_argument("--creds", metavar="USER[:PASSWORD]",
                      help="credentials for the registry (asked for when the password is left out); "
                           "registries.yaml's configs are used otherwise")
    pull.set_defaults(run=run_image_pull)
    push = images.add("push", "push an image of the node's store to its registry")
    push.add_argument("reference", metavar="NAME[:TAG]", help="the image, named after the registry and repository to push to")
    push.add_argument("-q", "--quiet", action="store_true", help="print only the pushed digest")
    push.add_argument("--creds", metavar="USER[:PASSWORD]",
                      help="credentials for the registry (asked for when the password is left out); "
                           "registries.yaml's configs are used otherwise")
    push.set_defaults(run=run_image_push)
    build = images.add("build", "build an image from a Dockerfile into the node's store (RUN steps run as pods)")
    build.add_argument("directory", metavar="DIR", help="the build context: the directory COPY and ADD read from")
    build.add_argument("-t", "--tag", action="append", metavar="NAME[:TAG]",
                       help="a name for the image (repeatable; default: nameless, shown by its id)")
    build.add_argument("-f", "--file", metavar="DOCKERFILE", help="the Dockerfile (default: DIR/Dockerfile)")
    build.add_argument("--build-arg", action="append", metavar="NAME[=VALUE]",
                       help="a value for an ARG (repeatable; without =VALUE, taken from the environment)")
    build.set_defaults(run=_run_image_build)
    images.add("ls", "list images with their size and the part shared with other images",
               aliases=("list",)).set_defaults(run=run_image_list)
    inspect = images.add("inspect", "print an image's record, config and layer directories as JSON")
    inspect.add_argument("reference", metavar="NAME", help="the image (name, name@digest or id)")
    inspect.set_defaults(run=run_image_inspect)
    image_import = images.add("import", "import a root filesystem tarball as an image")
    image_import.add_argument("reference", metavar="NAME[:TAG]", help="the image name to create")
    image_import.add_argument("file", metavar="FILE", help="a tar archive of the root filesystem")
    image_import.set_defaults(run=run_image_import)
    image_load = images.add("load", "load an OCI or Docker image archive (docker save / skopeo output)")
    image_load.add_argument("file", metavar="FILE", help="the image archive")
    image_load.set_defaults(run=run_image_load)
    image_tag = images.add("tag", "give an image another name")
    image_tag.add_argument("source", metavar="SOURCE", help="an existing image")
    image_tag.add_argument("target", metavar="TARGET", help="the new name")
    image_tag.set_defaults(run=run_image_tag)
    image_remove = images.add("rm", "remove an image name or id (the image goes with its last name)",
                              aliases=("remove",))
    image_remove.add_argument("reference", metavar="NAME", help="the image to remove")
    image_remove.set_defaults(run=run_image_remove)
    prune = images.add("prune", "remove images without a name, unused layers and leftovers of interrupted pulls")
    prune.add_argument("-a", "--all", action="store_true", help="remove every image no container uses, named or not")
    prune.set_defaults(run=run_image_prune)


def _run_image_build(args: argparse.Namespace, context: Context) -> int:
    from minikube_py.cli.image_build import run_image_build

    return run_image_build(args, context)


def _store(context: Context):
    from minikube_py.runtime.images import ImageStore

    return ImageStore(context.home)


def _call(action):
    """Run a store call, turning its errors (unknown image, bad archive, missing file) into `error:` lines."""
    from minikube_py.runtime.images import ContainerRuntimeError, ImageStoreError

    try:
        return action()
    except (ImageStoreError, OSError) as error:
        raise CommandError(str(error)) from None
    except ContainerRuntimeError as error:
        raise CommandError(error.message) from None


def run_image_pull(args: argparse.Namespace, context: Context) -> int:
    from minikube_py.runtime.images import platforms
    from minikube_py.runtime.images.hosts import RegistriesConfigError, RegistryHosts
    from minikube_py.runtime.images.puller import PullError, Puller
    from minikube_py.runtime.images.reference import InvalidReference, parse
    from minikube_py.runtime.images.registry import RegistryClient

    try:
        reference = parse(args.reference)
        platform = platforms.parse(args.platform) if args.platform else None
        hosts = RegistryHosts.load(context.home)
    except (InvalidReference, ValueError, RegistriesConfigError) as error:
        raise CommandError(f"{args.reference}: {error}" if isinstance(error, InvalidReference) else str(error)) from None
    keyring = _keyring(args.creds, reference.domain)
    client = RegistryClient(hosts)
    puller = Puller(_call(lambda: _store(context)), client, platform)
    display = None if args.quiet else PullProgress(sys.stdout)
    try:
        result = puller.pull(args.reference, keyring, display.update if display else None)
    except PullError as error:
        raise CommandError(error.message) from None
    finally:
        if display is not None:
            display.finish()
        client.close()
    if args.quiet:
        print(result.reference if reference.tag or not reference.digest else result.repo_digest)
        return 0
    print(f"Digest: {result.repo_digest.split('@', 1)[1]}")
    print(f"Downloaded {_size(result.downloaded)} in {result.seconds:.1f}s; image size {_size(result.image.size)}")
    print(result.reference if not reference.digest else result.repo_digest)
    return 0


def _keyring(creds: str | None, domain: str):
    """The `--creds USER[:PASSWORD]` credentials for `domain` (the password asked for when left out)."""
    from minikube_py.runtime.images.auth import Credentials, Keyring

    keyring = Keyring()
    if creds:
        user, separator, password = creds.partition(":")
        if not separator:
            password = getpass.getpass(f"Password for {user} at {domain}: ")
        keyring.add(domain, Credentials(user, password))
    return keyring


def run_image_push(args: argparse.Namespace, context: Context) -> int:
    from minikube_py.runtime.images.hosts import RegistriesConfigError, RegistryHosts
    from minikube_py.runtime.images.push import Pusher, PushError
    from minikube_py.runtime.images.reference import InvalidReference, parse
    from minikube_py.runtime.images.registry import RegistryClient

    try:
        reference = parse(args.reference).with_default_tag()
        hosts = RegistryHosts.load(context.home)
    except InvalidReference as error:
        raise CommandError(f"{args.reference}: {error}") from None
    except RegistriesConfigError as error:
        raise CommandError(str(error)) from None
    keyring = _keyring(args.creds, reference.domain)
    client = RegistryClient(hosts)
    if not args.quiet:
        print(f"The push refers to repository [{reference.name}]")

    def show(blob) -> None:
        if blob.state in ("pushed", "layer already exists", "mounted"):
            label = {"pushed": "Pushed", "layer already exists": "Layer already exists", "mounted": "Mounted"}[blob.state]
            print(f"{blob.digest[7:19]}: {label}", flush=True)

    try:
        result = Pusher(_call(lambda: _store(context)), client).push(args.reference, keyring,
                                                                     None if args.quiet else show)
    except PushError as error:
        raise CommandError(error.message) from None
    finally:
        client.close()
    if args.quiet:
        print(result.digest)
    else:
        print(f"{reference.tag}: digest: {result.digest} size: {result.size}")
    return 0


class PullProgress:
    """Per-layer lines: a live table on a terminal (redrawn at most 10 times a second), else one
    line per layer when it completes."""

    def __init__(self, out):
        self.out = out
        self.live = out.isatty()
        self.layers: dict[str, tuple[str, int, int, float, int]] = {}  # digest -> (state, done, size, t0, done0)
        self.lock = threading.Lock()
        self.drawn = 0
        self.last_draw = 0.0

    def update(self, layer) -> None:
        with self.lock:
            previous = self.layers.get(layer.digest)
            started, start_done = (previous[3], previous[4]) if previous else (time.monotonic(), layer.done)
            self.layers[layer.digest] = (layer.state, layer.done, layer.size, started, start_done)
            finished = layer.state in ("complete", "already exists")
            if not self.live:
                if finished and (previous is None or previous[0] != layer.state):
                    print(f"{layer.digest[7:19]}: {'Pull complete' if layer.state == 'complete' else 'Already exists'}"
                          f" ({_size(layer.size)})", file=self.out, flush=True)
                return
            if finished or time.monotonic() - self.last_draw > 0.1:
                self._draw()

    def _draw(self) -> None:
        lines = []
        for digest, (state, done, size, started, start_done) in self.layers.items():
            text = f"{digest[7:19]}: {state:<14}"
            if state == "downloading":
                elapsed = max(time.monotonic() - started, 1e-3)
                rate = (done - start_done) / elapsed
                eta = f"{(size - done) / rate:.0f}s" if rate > 0 else "?"
                text += f" {_size(done)}/{_size(size)}  {_size(int(rate))}/s  ETA {eta}"
            elif state in ("complete", "already exists", "unpacking"):
                text += f" {_size(size)}"
            lines.append(text)
        if self.drawn:
            self.out.write(f"\x1b[{self.drawn}F")
        self.out.write("".join(f"\x1b[2K{line}\n" for line in lines))
        self.out.flush()
        self.drawn = len(lines)
        self.last_draw = time.monotonic()

    def finish(self) -> None:
        with self.lock:
            if self.live and self.layers:
                self._draw()


def _size(count: int) -> str:
    from minikube_py.runtime.images import format_size

    return format_size(count)


def run_image_list(args: argparse.Namespace, context: Context) -> int:
    rows = _call(lambda: _store(context).list())
    table = Table(["REPOSITORY", "TAG", "IMAGE ID", "SIZE", "SHARED SIZE", "CREATED"], [row.columns() for row in rows])
    print(table.render())
    return 0


def run_image_inspect(args: argparse.Namespace, context: Context) -> int:
    document = _call(lambda: _store(context).inspect(args.reference))
    print(json.dumps([document], indent=2))
    return 0


def run_image_import(args: argparse.Namespace, context: Context) -> int:
    from minikube_py.runtime.images import normalize_reference

    image = _call(lambda: _store(context).import_rootfs(args.reference, args.file))
    print(f"Imported {_call(lambda: normalize_reference(args.reference))} ({image.id})")
    return 0


def run_image_load(args: argparse.Namespace, context: Context) -> int:
    loaded = _call(lambda: _store(context).load_archive(args.file))
    for reference in loaded or []:
        print(f"Loaded image: {reference}")
    return 0


def run_image_tag(args: argparse.Namespace, context: Context) -> int:
    _call(lambda: _store(context).tag(args.source, args.target))
    print(f"{args.target} tagged")
    return 0


def run_image_remove(args: argparse.Namespace, context: Context) -> int:
    store = _call(lambda: _store(context))
    image_id = _call(lambda: store.remove(args.reference))
    print(f"Untagged: {args.reference}")
    if not store.has(image_id):
        print(f"Deleted: {image_id}")
    return 0


def run_image_prune(args: argparse.Namespace, context: Context) -> int:
    removed, freed = _call(lambda: _store(context).prune(all_unused=args.all))
    if removed:
        print("Deleted Images:")
        for image_id in removed:
            print(f"deleted: {image_id}")
    print(f"Total reclaimed space: {_size(freed)}")
    return 0
