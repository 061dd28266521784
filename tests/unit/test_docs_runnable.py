"""Reading the docs' runnable blocks (tests/e2e/runnable_docs.py): commands, their shown output, its shape."""

from tests.e2e.runnable_docs import fenced_blocks, runnable_commands, shape_mismatches

PAGE = """\
```sh
minikube-py get pods -w        # not runnable: never ends
```

```sh runnable
minikube-py apply -f - <<'END'
kind: Pod
END
minikube-py get pods -o wide   # wide
minikube-py logs \\
  first
```

```console
pod/first created
$ minikube-py get pods -o wide
NAME    READY   STATUS    RESTARTS   AGE   IP           NODE   NOMINATED NODE   READINESS GATES
first   1/1     Running   0          4s    10.238.0.2   vm     <none>           <none>
$ minikube-py logs nobody
```

```console runnable
$ minikube-py describe pod first
Name:         first
...
    Restart Count:  0
```
"""


def test_only_blocks_marked_runnable_are_run_and_heredocs_and_continuations_stay_whole():
    commands = runnable_commands(PAGE)
    assert [command.text for command in commands] == [
        "minikube-py apply -f - <<'END'\nkind: Pod\nEND",
        "minikube-py get pods -o wide   # wide",
        "minikube-py logs \\\n  first",
        "minikube-py describe pod first",
    ]
    assert [command.line for command in commands] == [6, 9, 10, 23]


def test_the_console_block_after_a_runnable_block_gives_the_output_of_the_same_commands():
    apply, get, logs, describe = runnable_commands(PAGE)
    assert apply.shown_output is None and logs.shown_output is None
    assert get.shown_output[0].startswith("NAME    READY")
    assert describe.shown_output == ["Name:         first", "...", "    Restart Count:  0"]


def test_the_language_is_the_first_word_of_the_info_string():
    assert [(block.language, block.runnable) for block in fenced_blocks(PAGE)] == [
        ("sh", False), ("sh", True), ("console", False), ("console", True)]


def test_shape_compares_table_headers_and_keys_not_values():
    shown = ["NAME    READY   STATUS    RESTARTS   AGE", "first   1/1     Running   0          4s"]
    assert shape_mismatches(shown, "NAME   READY   STATUS   RESTARTS   AGE\nweb    0/1     Pending  0          1s\n") == []
    assert shape_mismatches(shown, "No resources found in default namespace.\n") == [
        "table header NAME  READY  STATUS  RESTARTS  AGE"]
    keys = ["Name:         first", "    Restart Count:  0", "2: eth0@if12: <UP>", "net:[4026532179]"]
    assert shape_mismatches(keys, "Name:   other\n    Restart Count:  3\n") == []
    assert shape_mismatches(keys, "Name:   other\nRestart Count:  3\n") == ["line     Restart Count:"]
