"""The runtime's protocol and records as data (runtime/protocol.py): versions, upgrades, the container state machine."""

from __future__ import annotations

import json

import pytest

from minikube_py.runtime import protocol
from minikube_py.runtime.container import ContainerSpec, SandboxSpec
from minikube_py.runtime.protocol import ContainerRecord, ContainerStatus
from minikube_py.runtime.types import ContainerRuntimeError

# A container record exactly as the first (unversioned) release wrote it.
FIRST_RELEASE_CONTAINER = {
    "id": "c1", "sandbox_id": "pod-1", "name": "app", "attempt": 0, "status": "running", "pid": 42,
    "start_time": 99, "started_at": 1.0, "finished_at": 0.0, "exit_code": None, "signal": None,
    "oom_killed": False, "reason": "", "message": "", "log_path": "/l/0.log", "cgroup": "g/c1",
    "spec": {"id": "c1", "sandbox_id": "pod-1", "name": "app", "attempt": 0, "image": "busybox",
             "directory": "/h/containers/c1", "layers": ["/h/images/l"], "argv": ["sleep", "1"],
             "env": [["A", "1"]], "uid": 0, "gid": 0},
}
FIRST_RELEASE_SANDBOX = {"pod_name": "web", "namespace": "default", "ip": "10.1.0.5", "cgroup": "g", "id": "pod-1",
                         "pid": 41, "start_time": 98, "status": "running", "share_process_namespace": False,
                         "started_at": 1.0, "host_veth": "mkabc"}


def test_an_unversioned_container_record_is_read_as_version_one_and_upgraded():
    record = protocol.container_record_from(dict(FIRST_RELEASE_CONTAINER))
    assert record.version == protocol.RECORD_VERSION
    assert record.status is ContainerStatus.RUNNING and (record.pid, record.start_time) == (42, 99)
    assert isinstance(record.spec, ContainerSpec) and record.spec.argv == ["sleep", "1"]


def test_a_first_release_unknown_exit_becomes_the_unknown_state():
    old = dict(FIRST_RELEASE_CONTAINER, status="exited", exit_code=137, reason="ContainerStatusUnknown")
    assert protocol.container_record_from(old).status is ContainerStatus.UNKNOWN


def test_an_unversioned_sandbox_record_is_upgraded(tmp_path):
    path = tmp_path / "pod-1.json"
    path.write_text(json.dumps(FIRST_RELEASE_SANDBOX))
    sandbox = protocol.load_sandbox_record(str(path))
    assert (sandbox.id, sandbox.host_veth, sandbox.status, sandbox.version) == \
        ("pod-1", "mkabc", protocol.SandboxStatus.RUNNING, protocol.RECORD_VERSION)


def test_a_record_from_a_newer_release_is_refused_with_what_to_do():
    with pytest.raises(ContainerRuntimeError, match="run the release that wrote it"):
        protocol.container_record_from(dict(FIRST_RELEASE_CONTAINER, version=protocol.RECORD_VERSION + 1))


def test_records_round_trip_through_their_file(tmp_path):
    record = protocol.container_record_from(dict(FIRST_RELEASE_CONTAINER))
    protocol.write_record(str(tmp_path / "state.json"), record)
    assert protocol.load_container_record(str(tmp_path / "state.json")) == record
    assert json.loads((tmp_path / "state.json").read_text())["status"] == "running"


@pytest.mark.parametrize("path", [
    [ContainerStatus.RUNNING, ContainerStatus.EXITED],
    [ContainerStatus.EXITED],
    [ContainerStatus.RUNNING, ContainerStatus.UNKNOWN],
])
def test_the_container_lifecycle_allows_its_transitions(path):
    record = ContainerRecord(id="c1", sandbox_id="p", name="app", attempt=0)
    assert record.status is ContainerStatus.CREATED
    for status in path:
        record.transition(status)
    assert record.status is path[-1] and record.finished


@pytest.mark.parametrize("path", [
    [ContainerStatus.UNKNOWN],
    [ContainerStatus.RUNNING, ContainerStatus.RUNNING],
    [ContainerStatus.RUNNING, ContainerStatus.EXITED, ContainerStatus.RUNNING],
    [ContainerStatus.RUNNING, ContainerStatus.UNKNOWN, ContainerStatus.EXITED],
    [ContainerStatus.EXITED, ContainerStatus.EXITED],
])
def test_an_illegal_transition_is_a_typed_error_and_changes_nothing(path):
    record = ContainerRecord(id="c1", sandbox_id="p", name="app", attempt=0)
    *legal, illegal = path
    for status in legal:
        record.transition(status)
    with pytest.raises(protocol.IllegalTransition) as raised:
        record.transition(illegal, exit_code=5)
    assert raised.value.reason == "InvalidContainerState" and record.exit_code is None
    assert isinstance(raised.value, ContainerRuntimeError)


def test_requests_carry_the_protocol_version_and_decode_to_their_type():
    request = protocol.CreateSandbox(SandboxSpec(id="p", hostname="h", share_process_namespace=True, pause_binary="/b"),
                                     pod_name="web", namespace="default", ip="10.0.0.2", cgroup="g")
    line = protocol.encode_request(request)
    assert json.loads(line)["version"] == protocol.PROTOCOL_VERSION and json.loads(line)["op"] == "create_sandbox"
    assert protocol.decode_request(line) == request


def test_a_request_of_another_version_is_refused_but_ping_and_shutdown_are_understood():
    with pytest.raises(ContainerRuntimeError) as raised:
        protocol.decode_request(b'{"op": "list"}\n')  # the first release's shape: no version
    assert raised.value.reason == "VersionMismatch"
    assert protocol.decode_request(b'{"op": "ping"}\n') == protocol.Ping()
    assert protocol.decode_request(b'{"op": "shutdown"}\n') == protocol.Shutdown()


@pytest.mark.parametrize("line, message", [
    (b"not json", "one JSON object per line"),
    (b"[1]", "must be a JSON object"),
    (b'{"op": "reboot"}', "unknown supervisor operation 'reboot'"),
    (b'{"op": "signal", "version": %d, "kind": "planet", "id": "x", "signal": 9}' % protocol.PROTOCOL_VERSION,
     "Signal.kind"),
    (b'{"op": "wait_exit", "version": %d}' % protocol.PROTOCOL_VERSION, "WaitExit"),
])
def test_a_malformed_request_is_a_bad_request_naming_the_problem(line, message):
    with pytest.raises(protocol.ProtocolError, match=message) as raised:
        protocol.decode_request(line)
    assert raised.value.reason == "BadRequest"


def test_a_first_release_pong_has_version_one():
    reply = protocol.decode_reply(protocol.Ping(), b'{"ok": true, "pid": 12}\n')
    assert reply == protocol.Pong(12, 1)


def test_an_error_reply_carries_the_failed_container():
    record = ContainerRecord(id="c1", sandbox_id="p", name="app", attempt=0)
    record.transition(ContainerStatus.EXITED, exit_code=128, reason="StartError")
    line = protocol.encode_reply(protocol.ErrorReply("RunContainerError", "exec failed", record))
    reply = protocol.decode_reply(protocol.StartContainer(ContainerSpec(
        id="c1", sandbox_id="p", name="app", attempt=0, image="i", directory="/d", layers=[], argv=["x"])), line)
    assert isinstance(reply, protocol.ErrorReply) and reply.container == record


def test_events_decode_to_their_type():
    record = ContainerRecord(id="c1", sandbox_id="p", name="app", attempt=0)
    event = protocol.decode_event(protocol.encode_event(protocol.ContainerExited(record)))
    assert event == protocol.ContainerExited(record)
