"""The CLI facing odd input (issue 9 item 10): no traceback, ever; a bad document is reported with
its file and number and the others still go through; a reader that stops reading ends the
command quietly; kubectl's bare boolean `--wait`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minikube_py.api.errors import NotFound

GOOD_POD = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: good\nspec:\n  containers:\n  - {name: a, image: busybox}\n"
CONTAINERS = "spec:\n  containers:\n  - {name: a, image: busybox}\n"

BAD_DOCUMENTS = [
    ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: 5\n" + CONTAINERS, "metadata.name: Invalid value: 5: must be a string"),
    ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: [a]\n" + CONTAINERS, 'metadata.name: Invalid value: ["a"]: must be a string'),
    ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  namespace: 7\n" + CONTAINERS,
     "metadata.namespace: Invalid value: 7: must be a string"),
    ("apiVersion: v1\nkind: Pod\nmetadata: [1, 2]\n" + CONTAINERS, "metadata: Invalid value: [1,2]: must be an object"),
    ("apiVersion: v1\nkind: Pod\nmetadata: hello\n", 'metadata: Invalid value: "hello": must be an object'),
    ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  annotations: [a]\n" + CONTAINERS,
     'metadata.annotations: Invalid value: ["a"]: must be an object'),
    ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  labels: x\n" + CONTAINERS,
     'metadata.labels: Invalid value: "x": must be an object'),
    ("apiVersion: v1\nkind: Pod\nmetadata: !!omap [name: x]\n" + CONTAINERS,
     'metadata: Invalid value: [{"name":"x"}]: must be an object'),
    ("apiVersion: v1\nkind: Pod\nmetadata: !!set {x, y}\n" + CONTAINERS, "metadata.name"),
    ("!!set {apiVersion, kind}\n", "apiVersion and kind not set"),
]


@pytest.mark.parametrize("bad, message", BAD_DOCUMENTS)
def test_apply_reports_a_bad_document_and_still_applies_the_next(live, bad, message):
    path = live.write("mixed.yaml", bad + "---\n" + GOOD_POD)
    result = live.run("apply", "-f", path)
    assert result.code == 1
    assert result.out == "pod/good created\n"
    assert f"{path}: document 1: " in result.err and message in result.err
    assert "Traceback" not in result.err and "unexpected failure" not in result.err


@pytest.mark.parametrize("bad, message", BAD_DOCUMENTS)
def test_delete_from_a_file_reports_a_bad_document_and_still_deletes_the_next(live, bad, message):
    live.pod("good")
    path = live.write("mixed.yaml", bad + "---\n" + GOOD_POD)
    result = live.run("delete", "-f", path)
    assert result.code == 1
    assert result.out == 'pod "good" deleted\n'
    assert f"{path}: document 1: " in result.err and message in result.err
    with pytest.raises(NotFound):
        live.registry.get("pods", "default", "good")


def test_delete_with_a_bare_wait_flag_waits_as_kubectl_does(live):
    live.pod("web-1")
    result = live.run("delete", "--wait", "pod", "web-1")
    assert (result.code, result.out, result.err) == (0, 'pod "web-1" deleted\n', "")
    with pytest.raises(NotFound):
        live.registry.get("pods", "default", "web-1")
    live.pod("web-2")
    assert live.run("delete", "pod", "web-2", "--wait").code == 0


def test_delete_wait_still_takes_an_explicit_value(live):
    live.pod("web-1", node="node1", status={"phase": "Running"})
    result = live.run("delete", "pod", "web-1", "--wait=false")
    assert (result.code, result.out) == (0, 'pod "web-1" deleted\n')
    assert live.registry.get("pods", "default", "web-1")["metadata"]["deletionTimestamp"]


def test_a_closed_stdout_ends_the_command_quietly(live):
    for index in range(3):
        live.pod(f"web-{index}")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    reader, writer = os.pipe()
    os.close(reader)  # like `| head -1` that has already exited
    try:
        child = subprocess.run(
            [sys.executable, "-m", "minikube_py", "--home", live.home, "get", "pods", "-o", "name"],
            stdout=writer, stderr=subprocess.PIPE, cwd=root, timeout=60)
    finally:
        os.close(writer)
    assert child.stderr.decode() == ""
    assert child.returncode == 141


# -- fuzzing the entry point ------------------------------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
                    st.text(max_size=8))
trees = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=3), st.dictionaries(st.text(max_size=6), children, max_size=3)), max_leaves=8)
metadata_fields = st.dictionaries(
    st.sampled_from(["name", "namespace", "generateName", "labels", "annotations", "ownerReferences",
                     "finalizers", "uid", "resourceVersion"]), trees, max_size=4)
manifests = st.fixed_dictionaries({
    "apiVersion": st.sampled_from(["v1", "apps/v1", "v2", 3]),
    "kind": st.sampled_from(["Pod", "Deployment", "ReplicaSet", "Namespace", "PodList", "Thing"]),
    "metadata": st.one_of(metadata_fields, trees),
    "spec": trees,
})
tags = st.sampled_from(["", "!!set ", "!!omap ", "!!pairs ", "!!binary ", "!!str ", "!!python/tuple "])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(documents=st.lists(manifests, min_size=1, max_size=3), tag=tags,
       verb=st.sampled_from([["apply", "-f"], ["delete", "--wait=false", "-f"]]))
def test_no_manifest_makes_the_cli_fail_unexpectedly(live, documents, tag, verb):
    text = "---\n".join(yaml.safe_dump(document) for document in documents)
    text = text.replace("metadata:", f"metadata: {tag}", 1) if tag else text
    path = live.write("fuzz.yaml", text)
    result = live.run(*verb, path)
    assert result.code in (0, 1)
    assert "unexpected failure" not in result.err and "Traceback" not in result.err


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(st.one_of(
    st.sampled_from(["get", "describe", "delete", "logs", "scale", "rollout", "status", "history", "undo",
                     "pods", "pod/x", "deploy/web", "-o", "name", "wide", "json", "yaml", "-l", "a=b", "!a",
                     "--field-selector", "spec.nodeName=", "--replicas", "-1", "--wait", "--timeout", "1x",
                     "-n", "", "-A", "--tail", "99999999999999999999999", "--since", "5q", "-c", "x"]),
    # No word that could ask to follow forever (`-w`, `--watch`, `-f`, abbreviations, `-Aw`).
    st.text(max_size=6).filter(lambda word: not (word.startswith("-") and any(letter in word for letter in "wf"))),
), min_size=1, max_size=6))
def test_no_argument_shape_makes_the_cli_fail_unexpectedly(live, words):
    try:
        result = live.run(*words)
    except SystemExit as exit_:  # argparse's usage errors exit with status 2, printing usage
        assert exit_.code in (0, 2)
        return
    assert "unexpected failure" not in result.err and "Traceback" not in result.err
