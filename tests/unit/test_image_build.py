"""The Dockerfile subset and the builder without a cluster: parsing (continuations, forms,
variables), every metadata instruction, COPY/ADD from the context, the layer cache keyed by
input, RUN through a fake step runner, and the errors bad Dockerfiles get."""

from __future__ import annotations

import io
import json
import os
import tarfile
from contextlib import contextmanager

import pytest

from minikube_py.runtime.images import ImageStore
from minikube_py.runtime.images import dockerfile
from minikube_py.runtime.images.build import Builder, BuildError, StepRun
from minikube_py.runtime.images.dockerfile import DockerfileError
from tests.unit.test_images import Layer


@pytest.fixture
def store(tmp_path):
    store = ImageStore(str(tmp_path / "home"))
    tar = Layer().directory("etc").file("etc/passwd", b"root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n") \
        .directory("bin").file("bin/sh", b"#!", 0o755).bytes()
    store.import_rootfs("base:v1", io.BytesIO(tar))
    return store


class FakeSteps:
    """Runs a RUN step by writing `files` into a fresh upper directory."""

    def __init__(self, tmp_path, files: dict[str, bytes] | None = None):
        self.tmp_path = tmp_path
        self.files = files or {"out/result": b"ran"}
        self.runs: list[StepRun] = []

    @contextmanager
    def run(self, step: StepRun):
        self.runs.append(step)
        upper = self.tmp_path / f"upper{len(self.runs)}"
        for name, data in self.files.items():
            (upper / name).parent.mkdir(parents=True, exist_ok=True)
            (upper / name).write_bytes(data)
        (upper / "etc").mkdir(exist_ok=True)
        (upper / "etc" / "hosts").write_bytes(b"")  # a mount point the runtime made
        (upper / "proc").mkdir()
        yield str(upper)


def context(tmp_path, text: str, files: dict[str, bytes] | None = None) -> str:
    directory = tmp_path / "context"
    directory.mkdir(exist_ok=True)
    (directory / "Dockerfile").write_text(text)
    for name, data in (files or {}).items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(data)
    return str(directory)


def build(store, tmp_path, text, files=None, steps=None, args=None, lines=None):
    directory = context(tmp_path, text, files)
    output = lines if lines is not None else []
    builder = Builder(store, steps.run if steps else None, output=output.append)
    return builder.build(text, directory, ["built:v1"], args)


def test_parse_joins_continuations_skips_comments_and_reads_both_command_forms():
    instructions = dockerfile.parse("# syntax\nFROM base\nRUN echo a \\\n  # inner comment\n  && echo b\n"
                                    'CMD ["sh", "-c", "x"]\nENTRYPOINT run me\n')
    assert [i.keyword for i in instructions] == ["FROM", "RUN", "CMD", "ENTRYPOINT"]
    assert instructions[1].arguments == "echo a  && echo b" and instructions[1].line == 3
    assert dockerfile.command_form(instructions[2]) == (["sh", "-c", "x"], True)
    assert dockerfile.command_form(instructions[3]) == (["/bin/sh", "-c", "run me"], False)


@pytest.mark.parametrize("text, wanted", [
    ("$A-${B}-${C:-dflt}-${A:+alt}-\\$A", "1-2-dflt-alt-$A"),
    ("${MISSING}x", "x"),
])
def test_variables_are_replaced_as_dockers_lexer_does(text, wanted):
    assert dockerfile.substitute(text, {"A": "1", "B": "2"}) == wanted


@pytest.mark.parametrize("text, message", [
    ("RUN true\n", "has no FROM"),
    ("FROM a\nFROM b\n", "line 2: FROM: multi-stage builds"),
    ("FROM a\nHEALTHCHECK CMD true\n", "line 2: unknown or unsupported instruction HEALTHCHECK"),
    ("FROM a\nCOPY --from=x a b\n", "--from is not supported; multi-stage"),
    ("ENV A=1\nFROM a\n", "line 1: ENV: only ARG may come before FROM"),
    ("", "has no instructions"),
])
def test_bad_dockerfiles_name_the_line(text, message):
    with pytest.raises(DockerfileError, match=message.replace("(", r"\(")):
        dockerfile.parse(text)


def test_metadata_instructions_make_the_config(store, tmp_path):
    text = ('FROM base:v1\nARG NAME=world\nENV GREETING="hello $NAME" PLAIN=1\nENV OLD form value\n'
            'LABEL a=b "c d"=e\nWORKDIR /srv\nWORKDIR sub\nUSER app\nEXPOSE 80 53/udp\nSTOPSIGNAL SIGINT\n'
            'ENTRYPOINT ["run"]\nCMD ["--flag"]\n')
    result = build(store, tmp_path, text)
    image = store.resolve("built:v1")
    config = image.config
    assert "GREETING=hello world" in config.env and "PLAIN=1" in config.env and "OLD=form value" in config.env
    assert config.labels == {"a": "b", "c d": "e"}
    assert config.working_dir == "/srv/sub" and config.user == "app" and config.stop_signal == "SIGINT"
    assert config.exposed_ports == ["53/udp", "80/tcp"]
    assert config.entrypoint == ["run"] and config.cmd == ["--flag"]
    assert os.path.isdir(os.path.join(image.layers[-1], "srv", "sub")), "WORKDIR makes a missing directory"
    assert result.image_id == image.id


def test_copy_and_add_take_files_from_the_context_with_owner_and_unpack_local_archives(store, tmp_path):
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("inside/file")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"in"))
    files = {"app/main.sh": b"echo", "app/lib/util": b"u", "notes.txt": b"n", "bundle.tar": archive.getvalue(),
             "secret.key": b"k"}
    text = "FROM base:v1\nWORKDIR /opt\nCOPY --chown=app app/ ./app/\nCOPY notes.txt /doc/\nADD bundle.tar /unpacked/\n"
    directory = context(tmp_path, text, files)
    (tmp_path / "context" / ".dockerignore").write_text("secret.key\n")
    Builder(store, None, output=lambda line: None).build(text, directory, ["built:v1"])
    layers = store.resolve("built:v1").layers
    copied = os.path.join(layers[-3], "opt", "app")
    assert open(os.path.join(copied, "lib", "util")).read() == "u"
    if os.geteuid() == 0:
        assert os.stat(os.path.join(copied, "main.sh")).st_uid == 1000
    assert open(os.path.join(layers[-2], "doc", "notes.txt")).read() == "n"
    assert open(os.path.join(layers[-1], "unpacked", "inside", "file")).read() == "in"
    with pytest.raises(BuildError, match="secret.key: no such file or directory in the build context"):
        Builder(store, None, output=lambda line: None).build("FROM base:v1\nCOPY secret.key /\n", directory, [])


def test_copy_refuses_paths_outside_the_context(store, tmp_path):
    (tmp_path / "outside").write_text("x")
    with pytest.raises(BuildError, match="forbidden path outside the build context: ../outside"):
        build(store, tmp_path, "FROM base:v1\nCOPY ../outside /\n")
    os.symlink(str(tmp_path / "outside"), str(tmp_path / "context" / "link"))
    with pytest.raises(BuildError, match="forbidden path outside the build context: link"):
        build(store, tmp_path, "FROM base:v1\nCOPY link /\n")


def test_run_steps_become_layers_without_mount_points_and_are_cached_by_input(store, tmp_path):
    steps = FakeSteps(tmp_path)
    text = "FROM base:v1\nARG MODE=a\nRUN make $MODE\nCOPY file /file\nRUN make more\n"
    first = build(store, tmp_path, text, {"file": b"1"}, steps, {"MODE": "b"})
    assert [run.argv for run in steps.runs] == [["/bin/sh", "-c", "make $MODE"], ["/bin/sh", "-c", "make more"]]
    assert steps.runs[0].env == [("MODE", "b")]
    run_layer = store.resolve("built:v1").layers[1]
    assert sorted(os.listdir(run_layer)) == ["out"], "etc/hosts, /proc and the copied-up /etc are left out"
    lines: list[str] = []
    second = build(store, tmp_path, text, {"file": b"1"}, steps, {"MODE": "b"}, lines)
    assert len(steps.runs) == 2 and second.cached == 3 and second.image_id == first.image_id
    third = build(store, tmp_path, text, {"file": b"2"}, steps, {"MODE": "b"})
    assert len(steps.runs) == 3 and third.cached == 1, "a changed file reruns its COPY and everything after"
    build(store, tmp_path, text, {"file": b"2"}, steps, {"MODE": "c"})
    assert len(steps.runs) == 5, "another build argument value reruns the RUNs that see it"
    assert not [name for name, _ in store._tags().items() if "build.minikube-py.local" in name], "no step names left"


def test_run_needs_a_cluster_and_a_failing_step_is_named(store, tmp_path):
    with pytest.raises(BuildError, match="line 2: RUN: RUN steps need a running cluster"):
        build(store, tmp_path, "FROM base:v1\nRUN true\n")

    @contextmanager
    def failing(step):
        raise BuildError(f"{step.description}: the command exited with code 2")
        yield ""

    with pytest.raises(BuildError, match="^Dockerfile line 2: RUN false: the command exited with code 2$"):
        Builder(store, failing, output=lambda line: None).build("FROM base:v1\nRUN false\n",
                                                                context(tmp_path, ""), ["x:v1"])


def test_from_an_image_that_is_not_here_says_how_to_get_it(store, tmp_path):
    with pytest.raises(BuildError, match="FROM nothere:v1: the image is not in the node's store"):
        build(store, tmp_path, "FROM nothere:v1\n")
    result = build(store, tmp_path, "FROM scratch\nCOPY f /f\n", {"f": b"x"})
    config = json.loads(store.read_blob(result.image_id))
    assert len(config["rootfs"]["diff_ids"]) == 1 and config["history"][-1]["created_by"] == "COPY f /f"
