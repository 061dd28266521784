"""The attach session the node agent hands the API server: output as logged, input to the runtime's
ContainerInput, detaching that leaves the container running and ends stdin only for stdinOnce."""

from minikube_py.agent.attach import AttachSession
from minikube_py.runtime.fake import FakeContainerInput


def session_with(container_input, chunks=(b"one\n", b"two")):
    detaches = []
    attached_flags = []

    def output(attached):
        for chunk in chunks:
            attached_flags.append(attached())
            yield chunk

    return AttachSession(output, container_input, lambda: detaches.append(True)), detaches, attached_flags


def test_output_arrives_on_stdout_and_the_status_is_success():
    session, _, _ = session_with(None)
    assert list(session.read()) == [(1, b"one\n"), (1, b"two")]
    assert session.wait() == 0


def test_input_goes_to_the_container_and_a_pipes_end_is_final():
    pipe = FakeContainerInput(tty=False)
    session, detaches, _ = session_with(pipe)
    session.write_stdin(b"typed")
    session.close_stdin()
    assert pipe.written == b"typed" and pipe.stdin_closed
    assert detaches == [True]  # the agent closes the container's stdin when stdinOnce says so


def test_a_terminal_gets_eof_and_resizes_without_ending_its_input():
    terminal = FakeContainerInput(tty=True)
    session, detaches, _ = session_with(terminal)
    session.resize(100, 30)
    session.close_stdin()
    assert terminal.sizes == [(100, 30)] and terminal.stdin_closed and detaches == []


def test_detaching_stops_following_and_releases_the_input_once():
    terminal = FakeContainerInput(tty=True)
    session, detaches, attached_flags = session_with(terminal, chunks=(b"a", b"b"))
    output = session.read()
    assert next(output) == (1, b"a")
    session.kill()
    session.kill()
    assert next(output) == (1, b"b")
    assert attached_flags == [True, False]  # the follower sees the detach and stops polling
    assert terminal.closed and detaches == [True]


def test_without_input_writes_are_dropped():
    session, _, _ = session_with(None)
    session.write_stdin(b"ignored")
    session.close_stdin()
    session.resize(80, 24)
