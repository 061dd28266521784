"""kubelet's atomic writer: the `..data` layout, the swap on change, items, modes and bad paths."""

import os

import pytest

from minikube_py.agent.volumes_writer import DATA_DIR, AtomicWriter, FileProjection, PayloadError


class Clock:
    def __init__(self):
        self.now = 1_796_297_400.0  # 2026-12-03 11:30:00 UTC

    def __call__(self):
        return self.now


@pytest.fixture
def writer(tmp_path):
    return AtomicWriter(str(tmp_path), Clock())


def files(payload: dict[str, tuple[bytes, int]]):
    return {path: FileProjection(data, mode) for path, (data, mode) in payload.items()}


def read(tmp_path, name):
    return (tmp_path / name).read_bytes()


def test_the_first_write_makes_a_timestamped_dir_the_data_link_and_one_link_per_key(writer, tmp_path):
    assert writer.write(files({"a.conf": (b"one", 0o644), "b": (b"two", 0o400)}))
    data_target = os.readlink(tmp_path / DATA_DIR)
    assert data_target.startswith("..2026_12_03_11_30_00.")
    assert (tmp_path / data_target).is_dir() and not (tmp_path / data_target).is_symlink()
    assert os.stat(tmp_path / data_target).st_mode & 0o7777 == 0o755
    assert os.readlink(tmp_path / "a.conf") == "..data/a.conf"
    assert os.readlink(tmp_path / "b") == "..data/b"
    assert read(tmp_path, "a.conf") == b"one" and read(tmp_path, "b") == b"two"
    assert os.stat(tmp_path / "a.conf").st_mode & 0o7777 == 0o644
    assert os.stat(tmp_path / "b").st_mode & 0o7777 == 0o400
    assert sorted(os.listdir(tmp_path)) == sorted([DATA_DIR, data_target, "a.conf", "b"])


def test_an_unchanged_payload_writes_nothing(writer, tmp_path):
    writer.write(files({"a": (b"one", 0o644)}))
    before = os.readlink(tmp_path / DATA_DIR)
    writer.now.now += 60
    assert not writer.write(files({"a": (b"one", 0o644)}))
    assert os.readlink(tmp_path / DATA_DIR) == before


def test_a_change_swaps_data_to_a_new_dir_and_removes_the_old_one(writer, tmp_path):
    writer.write(files({"a": (b"old", 0o644)}))
    old_dir = os.readlink(tmp_path / DATA_DIR)
    reader = open(tmp_path / "a", "rb")  # a container that opened the file before the update
    writer.now.now += 61
    assert writer.write(files({"a": (b"new", 0o644)}))
    new_dir = os.readlink(tmp_path / DATA_DIR)
    assert new_dir != old_dir and new_dir.startswith("..2026_12_03_11_31_01.")
    assert not (tmp_path / old_dir).exists()
    assert read(tmp_path, "a") == b"new"
    assert reader.read() == b"old"  # never a mix: the old inode stays whole until closed
    reader.close()
    assert not (tmp_path / "..data_tmp").exists()


def test_a_file_bound_through_a_key_before_a_change_keeps_the_old_content(writer, tmp_path):
    """What a subPath mount sees: the file `key` resolved to at container start."""
    writer.write(files({"a": (b"old", 0o644)}))
    bound = os.path.realpath(tmp_path / "a")
    held = os.open(bound, os.O_RDONLY)  # the bind mount holds the inode as this descriptor does
    writer.write(files({"a": (b"new", 0o644)}))
    assert os.pread(held, 10, 0) == b"old"
    os.close(held)


def test_a_removed_key_loses_its_link_and_a_new_key_gains_one(writer, tmp_path):
    writer.write(files({"a": (b"1", 0o644), "b": (b"2", 0o644)}))
    writer.write(files({"b": (b"2", 0o644), "c": (b"3", 0o644)}))
    assert not os.path.lexists(tmp_path / "a")
    assert read(tmp_path, "c") == b"3"


def test_nested_item_paths_get_one_link_for_their_top_directory(writer, tmp_path):
    writer.write(files({"conf/app/a.conf": (b"x", 0o600), "conf/b": (b"y", 0o644)}))
    assert os.readlink(tmp_path / "conf") == "..data/conf"
    assert read(tmp_path, "conf/app/a.conf") == b"x"
    assert os.stat(tmp_path / "conf/app/a.conf").st_mode & 0o7777 == 0o600
    assert os.stat(tmp_path / "conf/app").st_mode & 0o7777 == 0o755


def test_an_empty_payload_is_an_empty_volume_with_its_data_link(writer, tmp_path):
    assert writer.write({})
    assert os.path.islink(tmp_path / DATA_DIR)
    assert not writer.write({})


def test_the_permissions_hook_runs_before_the_new_files_are_visible(writer, tmp_path):
    seen = []
    writer.write(files({"a": (b"1", 0o644)}), set_permissions=lambda root: seen.append(
        (root, os.path.exists(os.path.join(root, "a")))))
    assert seen == [(str(tmp_path), False)]


@pytest.mark.parametrize("path", ["/etc/passwd", "../x", "a/../../x", "..data", "..2026", ""])
def test_paths_that_escape_or_clash_are_refused(writer, tmp_path, path):
    with pytest.raises(PayloadError):
        writer.write(files({path: (b"x", 0o644)}))
    assert not os.path.lexists(tmp_path / DATA_DIR)
