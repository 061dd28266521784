"""The `image` commands' own output: the pull progress display (bytes, rate, ETA on a terminal,
one line per finished layer otherwise), `image ls`'s SHARED SIZE column and `image prune`."""

from __future__ import annotations

import io
import os
import time

import httpx
import pytest

from minikube_py.cli import images
from minikube_py.cli.main import main
from minikube_py.runtime.images import ImageStore
from minikube_py.runtime.images.platforms import Platform
from minikube_py.runtime.images.puller import LayerProgress, Puller
from minikube_py.runtime.images.registry import RegistryClient, RetryPolicy
from minikube_py.runtime.images.store import format_size
from tests.unit.test_image_puller import BASE, publish
from tests.unit.test_image_registry import FakeRegistry, digest_of
from tests.unit.test_images import Layer

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(images.time, "monotonic", clock)
    return clock


def test_a_terminal_shows_each_layers_bytes_rate_and_eta(clock):
    out = Terminal()
    display = images.PullProgress(out)
    display.update(LayerProgress(DIGEST_A, 10_000_000, 0, "downloading"))
    display.update(LayerProgress(DIGEST_B, 3_000_000, 3_000_000, "already exists"))
    clock.now += 2
    out.truncate(0), out.seek(0)
    display.update(LayerProgress(DIGEST_A, 10_000_000, 4_000_000, "downloading"))
    # 4 MB in 2 s: 2 MB/s, and the 6 MB left take 3 s more. The table is redrawn in place.
    assert out.getvalue() == ("\x1b[2F"
                              f"\x1b[2K{'a' * 12}: downloading    4MB/10MB  2MB/s  ETA 3s\n"
                              f"\x1b[2K{'b' * 12}: already exists 3MB\n")
    clock.now += 3
    out.truncate(0), out.seek(0)
    display.update(LayerProgress(DIGEST_A, 10_000_000, 10_000_000, "complete"))
    display.finish()
    assert out.getvalue().endswith(f"\x1b[2F\x1b[2K{'a' * 12}: complete       10MB\n"
                                   f"\x1b[2K{'b' * 12}: already exists 3MB\n")


def test_a_stalled_download_has_no_eta_and_redraws_are_limited_to_ten_a_second(clock):
    out = Terminal()
    display = images.PullProgress(out)
    display.update(LayerProgress(DIGEST_A, 10_000_000, 0, "downloading"))
    clock.now += 0.05
    drawn = out.getvalue()
    display.update(LayerProgress(DIGEST_A, 10_000_000, 1_000, "downloading"))
    assert out.getvalue() == drawn  # 50 ms after the last draw: not redrawn
    clock.now += 1
    display.update(LayerProgress(DIGEST_A, 10_000_000, 0, "downloading"))
    assert out.getvalue().endswith(f"\x1b[2K{'a' * 12}: downloading    0B/10MB  0B/s  ETA ?\n")


def test_without_a_terminal_each_layer_gets_one_line_when_it_is_done(clock):
    out = io.StringIO()
    display = images.PullProgress(out)
    display.update(LayerProgress(DIGEST_A, 10_000_000, 0, "downloading"))
    display.update(LayerProgress(DIGEST_A, 10_000_000, 5_000_000, "downloading"))
    display.update(LayerProgress(DIGEST_A, 10_000_000, 10_000_000, "unpacking"))
    display.update(LayerProgress(DIGEST_A, 10_000_000, 10_000_000, "complete"))
    display.update(LayerProgress(DIGEST_A, 10_000_000, 10_000_000, "complete"))
    display.update(LayerProgress(DIGEST_B, 3_000_000, 3_000_000, "already exists"))
    display.finish()
    assert out.getvalue() == (f"{'a' * 12}: Pull complete (10MB)\n"
                              f"{'b' * 12}: Already exists (3MB)\n")


# -- image ls and image prune on a store filled from a fake registry ------------------------------


@pytest.fixture
def home():
    import shutil
    import tempfile

    directory = tempfile.mkdtemp(prefix="mkpy-img-")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def filled(home):
    """Three images: `one` and `two` on the same 200 kB base layer, `solo` on its own."""
    registry = FakeRegistry()
    own = {name: Layer().file(name, os.urandom(30_000)).bytes() for name in ("one", "two", "solo")}
    publish(registry, "one", [BASE, own["one"]], ["one"])
    publish(registry, "two", [BASE, own["two"]], ["two"])
    publish(registry, "solo", [own["solo"]], ["solo"])
    client = RegistryClient(retry=RetryPolicy(attempts=1), transport=httpx.MockTransport(registry.handler))
    puller = Puller(ImageStore(home), client, platform=Platform("linux", "amd64"))
    for tag in ("one", "two", "solo"):
        puller.pull(f"reg.test/app:{tag}")
    return puller.store, {name: digest_of(tar) for name, tar in own.items()}, digest_of(BASE)


def run(home, capsys, *argv):
    capsys.readouterr()
    code = main(["--home", home, "image", *argv])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def table(text: str) -> dict[str, list[str]]:
    """`image ls` rows by tag: the columns split on runs of two or more spaces."""
    import re

    lines = text.strip().splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["REPOSITORY", "TAG", "IMAGE ID", "SIZE", "SHARED SIZE", "CREATED"]
    return {row[1]: row for row in (re.split(r"\s{2,}", line) for line in lines[1:])}


def test_image_ls_shows_the_size_each_image_shares_with_others(filled, home, capsys):
    store, own, base = filled
    rows = table(run(home, capsys, "ls"))
    assert set(rows) == {"one", "two", "solo"} and rows["one"][0] == "reg.test/app"
    shared = format_size(store.layer_size(base))
    assert rows["one"][4] == rows["two"][4] == shared != "0B"
    assert rows["solo"][4] == "0B"
    assert rows["one"][3] == format_size(store.layer_size(base) + store.layer_size(own["one"]))
    store.remove("reg.test/app:two")  # `one` now holds the base alone: nothing shared any more
    assert table(run(home, capsys, "ls"))["one"][4] == "0B"


def test_image_prune_removes_nameless_images_and_their_own_layers_only(filled, home, capsys):
    store, own, base = filled
    two = store.resolve("reg.test/app:two").id
    store.untag("reg.test/app:two")
    out = run(home, capsys, "prune")
    lines = out.splitlines()
    assert lines[:2] == ["Deleted Images:", f"deleted: {two}"] and lines[2].startswith("Total reclaimed space: ")
    assert lines[2] != "Total reclaimed space: 0B" and len(lines) == 3
    assert not store.has_layer(own["two"]) and store.has_layer(base) and store.has_layer(own["one"])
    assert set(table(run(home, capsys, "ls"))) == {"one", "solo"}
    assert run(home, capsys, "prune") == "Total reclaimed space: 0B\n"  # named images stay


def test_image_prune_all_removes_every_image_no_container_uses(filled, home, capsys):
    store, own, base = filled
    ids = sorted(store.resolve(f"reg.test/app:{tag}").id for tag in ("one", "two", "solo"))
    lines = run(home, capsys, "prune", "--all").splitlines()
    assert lines[0] == "Deleted Images:" and sorted(lines[1:4]) == [f"deleted: {i}" for i in ids]
    assert lines[4].startswith("Total reclaimed space: ") and lines[4] != "Total reclaimed space: 0B"
    assert store.list() == [] and os.listdir(store.layers_directory) == []
    assert run(home, capsys, "ls").strip().splitlines()[1:] == []


def test_image_prune_sweeps_what_interrupted_pulls_left_behind(filled, home, capsys):
    store, own, base = filled
    old, recent = os.path.join(store.ingest_directory, "old"), os.path.join(store.ingest_directory, "recent")
    for path in (old, recent):
        with open(path, "wb") as file:
            file.write(b"x" * 5000)
    os.utime(old, (time.time() - 2 * 86400,) * 2)  # a partial blob untouched for two days
    unpack = os.path.join(store.layers_directory, ".unpack-cut")
    os.makedirs(unpack)
    os.utime(unpack, (time.time() - 7200,) * 2)  # an unpack a crash cut short two hours ago
    assert run(home, capsys, "prune") == "Total reclaimed space: 5kB\n"
    assert not os.path.exists(old) and not os.path.exists(unpack)
    assert os.path.exists(recent)  # a pull may still be resuming it
