"""The real kubectl v1.32 as a daily user drives it: a battery of well over 150 commands against
one cluster started with `--port`, each checked for its exit code and its output.

Every verb the cluster serves and every output format (`-o json|yaml|wide|name|jsonpath|
custom-columns|go-template` and their file and `-as-json` forms) appear. Commands run one after
another in a few groups that share objects, so the whole battery costs one cluster and the pods
of one Deployment and a few single pods. A step is data (`Step`): the arguments, the exit code
and what stdout (or, for failures, stderr) must contain; `run` executes a group and reports the
first step that did not do what it should, with its whole output. Interactive commands (`exec -it`,
`debug -it`, `attach -it`) run on a pseudo-terminal of their own, driven by the step's `terminal`
exchanges, and their terminal's output is what is checked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field

import pytest
import yaml

from tests.e2e.cluster import Cluster, free_port
from tests.e2e.terminal import Terminal

KUBECTL = shutil.which("kubectl")
NAMESPACE = "battery"


@dataclass(frozen=True)
class Exchange:
    """One turn at a terminal: wait until `wait_for` shows (pressing enter every second meanwhile
    with `press_enter`, as a user answers kubectl's "try pressing enter"), then type `then`."""

    wait_for: str
    then: str = ""
    press_enter: bool = False


@dataclass(frozen=True)
class Step:
    """One kubectl command: `args`, the exit `code` it must give, substrings `out` that stdout
    must contain (stdout and stderr when the code is not 0), `absent` ones it must not, a `pattern` stdout
    must match, and `stdin`; or, with `terminal`, the exchanges of a command run on a pty, whose
    terminal output (stdout and stderr together) is what `out`, `absent` and `pattern` check."""

    args: tuple[str, ...]
    out: tuple[str, ...] = ()
    code: int = 0
    absent: tuple[str, ...] = ()
    pattern: str | None = None
    stdin: str | None = None
    env: dict = field(default_factory=dict)
    timeout: float = 60
    terminal: tuple[Exchange, ...] = ()


def k(*args: str, out: str | tuple[str, ...] = (), **kwargs) -> Step:
    return Step(tuple(args), (out,) if isinstance(out, str) else tuple(out), **kwargs)


def run(cluster: Cluster, steps: list[Step]) -> list[subprocess.CompletedProcess]:
    results = []
    for number, step in enumerate(steps, 1):
        env = dict(cluster.env, **step.env)
        assert KUBECTL is not None
        began = time.monotonic()
        if step.terminal:
            result = on_terminal([KUBECTL, *step.args], env, step)
        else:
            result = subprocess.run([KUBECTL, *step.args], env=env, capture_output=True, text=True,
                                    input=step.stdin, timeout=step.timeout)
        if os.environ.get("BATTERY_TIMES"):
            print(f"{time.monotonic() - began:6.2f} s  kubectl {' '.join(step.args)[:100]}")
        shown = result.stdout if step.code == 0 else result.stdout + result.stderr
        where = f"step {number}: kubectl {' '.join(step.args)} exited {result.returncode}\n" \
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        assert result.returncode == step.code, where
        for expected in step.out:
            assert expected in shown, f"{where}\nmissing: {expected!r}"
        for unexpected in step.absent:
            assert unexpected not in shown, f"{where}\nunexpected: {unexpected!r}"
        if step.pattern is not None:
            assert re.search(step.pattern, shown, re.MULTILINE), f"{where}\nno match for {step.pattern!r}"
        results.append(result)
    return results


def on_terminal(argv: list[str], env: dict, step: Step) -> subprocess.CompletedProcess:
    """Run an interactive command on a pty through the step's exchanges; its terminal's output is
    the result's stdout (and stderr, as a terminal shows both)."""
    terminal = Terminal(argv, env)
    try:
        for exchange in step.terminal:
            if exchange.press_enter:
                terminal.press_enter_until(exchange.wait_for.encode(), timeout=step.timeout)
            else:
                terminal.expect(exchange.wait_for.encode(), timeout=step.timeout)
            if exchange.then:
                terminal.type(exchange.then)
        code = terminal.exit_code(timeout=step.timeout)
    except BaseException:
        terminal.kill()
        raise
    return subprocess.CompletedProcess(argv, code, terminal.text(), terminal.text())


CONFIGMAP = f"""
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: {NAMESPACE}
  labels: {{tier: config}}
data:
  color: blue
  size: "3"
"""
SECRET = f"""
apiVersion: v1
kind: Secret
metadata:
  name: credentials
  namespace: {NAMESPACE}
type: Opaque
stringData:
  password: hunter2
"""
DEPLOYMENT = f"""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {NAMESPACE}
  labels: {{app: web}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: httpd
          image: busybox
          command: ["sh", "-c", "mkdir -p /www && echo web $HOSTNAME > /www/index.html && echo started && exec httpd -f -p 8080 -h /www"]
          ports: [{{containerPort: 8080}}]
"""
JOB = f"""
apiVersion: batch/v1
kind: Job
metadata:
  name: once
  namespace: {NAMESPACE}
spec:
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
        - name: main
          image: busybox
          command: ["sh", "-c", "echo job done"]
"""
CRONJOB = f"""
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
  namespace: {NAMESPACE}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: main
              image: busybox
              command: ["true"]
"""
INVALID_POD = f"""
apiVersion: v1
kind: Pod
metadata:
  name: broken
  namespace: {NAMESPACE}
spec:
  containers:
    - name: main
      image: busybox
      ports: [{{containerPort: 99999}}]
"""


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("e2e tests run real pods and need root")
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    running = Cluster().start(port=free_port())
    try:
        running.cli("apply", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n")
        yield running
    finally:
        leftovers = running.stop()
        assert not leftovers, f"cluster {running.name} left these on the host after stop: {leftovers}"


def test_the_battery_has_at_least_150_commands():
    """The battery's size, counted from its groups (each group is one test below)."""
    total = sum(len(steps(NAMESPACE_TOKEN)) for steps in GROUPS)
    assert total >= 150, total


NAMESPACE_TOKEN = "-n=" + NAMESPACE


def cluster_and_config_steps(ns: str) -> list[Step]:
    return [
        k("version", out=("Client Version: v1.32", "Server Version: v1.32")),
        k("version", "-o", "json", out='"gitVersion": "v1.32.0-minikube-py'),
        k("version", "-o", "yaml", out="serverVersion:"),
        k("cluster-info", out="Kubernetes control plane is running at https://127.0.0.1:"),
        k("api-versions", out=("apps/v1", "batch/v1", "authorization.k8s.io/v1", "v1")),
        k("api-resources", out=("deployments", "deploy", "apps/v1", "configmaps")),
        k("api-resources", "--namespaced=false", "-o", "name", out=("namespaces", "nodes"), absent=("pods\n",)),
        k("api-resources", "--api-group=apps", "-o", "wide", out=("VERBS", "deletecollection")),
        k("config", "current-context", pattern=r"^e2e\w+$"),
        k("config", "get-contexts", out=("CURRENT", "*")),
        k("config", "view", "--minify", out=("server: https://127.0.0.1:", "REDACTED")),
        k("config", "view", "-o", "jsonpath={.contexts[0].context.cluster}", pattern=r"^e2e\w+$"),
        k("get", "--raw", "/healthz", out="ok"),
        k("get", "--raw", "/livez?verbose", out=("[+]ping ok", "[+]etcd ok", "livez check passed")),
        k("get", "--raw", "/readyz/shutdown", out="ok"),
        k("get", "--raw", "/metrics", out=("# TYPE apiserver_request_total counter", "apiserver_storage_objects")),
        k("get", "--raw", "/version", out='"major":"1"'),
        k("get", "--raw", "/api/v1/namespaces/kube-public", out='"name":"kube-public"'),
        k("get", "namespaces", out=("default", "kube-node-lease", "kube-public", "kube-system", NAMESPACE)),
        k("get", "ns", ns.split("=")[1], "-o", "jsonpath={.status.phase}", out="Active"),
        k("get", "nodes", out=("NAME", "STATUS", "Ready")),
        k("get", "nodes", "-o", "wide", out=("INTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME")),
        k("get", "nodes", "-o", "jsonpath={.items[0].status.nodeInfo.kubeProxyVersion}", out="v1.32"),
        k("get", "nodes", "-o", "jsonpath={.items[0].status.nodeInfo.bootID}", pattern=r"^[0-9a-f-]{36}$"),
        k("describe", "nodes", out=("System Info:", "Boot ID:", "Kubelet Version:")),
        k("get", "--raw", "/api/v1/namespaces/default/pods/nothing", code=1, out="NotFound"),
        k("get", "pods", "nothing", ns, code=1, out='pods "nothing" not found'),
        k("get", "frobnicators", code=1, out='the server doesn\'t have a resource type "frobnicators"'),
        k("get", "pods", "-o", "bogus", code=1, out="unable to match a printer suitable for the output format"),
        k("get", "pods", "-l", "=bad", ns, code=1),
    ]


def object_steps(ns: str) -> list[Step]:
    with_template = os.path.join(TEMPLATES, "names.tmpl")
    columns = os.path.join(TEMPLATES, "columns.txt")
    return [
        k("apply", "-f", "-", stdin=CONFIGMAP, out="configmap/settings created"),
        k("apply", "-f", "-", stdin=CONFIGMAP, out="configmap/settings unchanged"),
        k("create", "-f", "-", stdin=SECRET, out="secret/credentials created"),
        k("create", "-f", "-", stdin=SECRET, code=1, out='secrets "credentials" already exists'),
        k("get", "configmaps", ns, out=("NAME", "DATA", "settings")),
        k("get", "cm", "settings", ns, "-o", "wide", out="settings"),
        k("get", "cm", "settings", ns, "-o", "name", out="configmap/settings"),
        k("get", "cm", "settings", ns, "-o", "json", out='"color": "blue"'),
        k("get", "cm", "settings", ns, "-o", "yaml", out="color: blue"),
        k("get", "cm", "settings", ns, "-o", "jsonpath={.data.size}", out="3"),
        k("get", "cm", ns, "-o", "jsonpath={range .items[*]}{.metadata.name}{\"\\n\"}{end}", out="settings\n"),
        k("get", "cm", "settings", ns, "-o", "jsonpath-as-json={.data}", out='"color": "blue"'),
        k("get", "cm", ns, "-l", "tier", "-o", "custom-columns=NAME:.metadata.name,COLOR:.data.color",
          pattern=r"^NAME\s+COLOR\nsettings\s+blue"),
        k("get", "cm", ns, "-l", "tier", f"-o=custom-columns-file={columns}", pattern=r"^NAME\s+TIER\nsettings\s+config"),
        k("get", "cm", "settings", ns, "-o", "go-template={{.data.color}}/{{.metadata.namespace}}",
          out=f"blue/{NAMESPACE}"),
        k("get", "cm", ns, f"-o=go-template-file={with_template}", out="settings;"),
        k("get", "cm", ns, "-o", "template={{range .items}}{{.metadata.name}}{{end}}", out="settings"),
        k("get", "secret", "credentials", ns, "-o", "jsonpath={.data.password}", out="aHVudGVyMg=="),
        k("get", "secret", ns, out=("TYPE", "Opaque")),
        k("describe", "secret", "credentials", ns, out=("password:", "7 bytes")),
        k("describe", "cm", "settings", ns, out=("Data", "color:", "blue")),
        k("get", "cm", ns, "--show-labels", out="tier=config"),
        k("get", "cm", ns, "-L", "tier", out=("TIER", "config")),
        k("get", "cm", ns, "--no-headers", absent=("NAME",), out="settings"),
        k("get", "cm", ns, "-l", "tier=config", "-o", "name", out="configmap/settings"),
        k("get", "cm", ns, "--field-selector", "metadata.name=settings", "-o", "name", out="configmap/settings"),
        k("get", "cm", ns, "--sort-by", ".metadata.name", "-o", "name", out="configmap/kube-root-ca.crt"),
        k("label", "cm", "settings", ns, "stage=test", out="configmap/settings labeled"),
        k("label", "cm", "settings", ns, "stage=prod", code=1, out="already has a value (test)"),
        k("label", "cm", "settings", ns, "stage=prod", "--overwrite", out="configmap/settings labeled"),
        k("label", "cm", "settings", ns, "stage-", out="configmap/settings unlabeled"),
        k("annotate", "cm", "settings", ns, "owner=team-a", out="configmap/settings annotated"),
        k("get", "cm", "settings", ns, "-o", "jsonpath={.metadata.annotations.owner}", out="team-a"),
        k("annotate", "cm", "settings", ns, "owner-", out="configmap/settings annotated"),
        k("patch", "cm", "settings", ns, "-p", '{"data":{"color":"green"}}', out="configmap/settings patched"),
        k("patch", "cm", "settings", ns, "--type=merge", "-p", '{"data":{"extra":"1"}}',
          out="configmap/settings patched"),
        k("patch", "cm", "settings", ns, "--type=json", "-p", '[{"op":"remove","path":"/data/extra"}]',
          out="configmap/settings patched"),
        k("patch", "cm", "settings", ns, "--type=json", "-p", '[{"op":"test","path":"/data/color","value":"red"}]',
          code=1, out="The request is invalid: /data/color: json patch operation 0: test failed"),
        k("patch", "cm", "settings", ns, "-p", '{"data":{"color":"green"}}', out="configmap/settings patched (no change)"),
        k("get", "cm", "settings", ns, "-o", "jsonpath={.data.color}", out="green"),
        k("get", "cm", "settings", ns, "-o", "yaml", out=("kind: ConfigMap", "color: green")),
        k("replace", "-f", "-", stdin=CONFIGMAP, out="configmap/settings replaced"),
        k("get", "cm", "settings", ns, "-o", "jsonpath={.data.color}", out="blue"),
        k("edit", "cm", "settings", ns, env={"KUBE_EDITOR": "sed -i s/color:\\ blue/color:\\ purple/"},
          out="configmap/settings edited"),
        k("get", "cm", "settings", ns, "-o", "jsonpath={.data.color}", out="purple"),
        k("create", "-f", "-", stdin=INVALID_POD, code=1,
          out=('The Pod "broken" is invalid', "spec.containers[0].ports[0].containerPort")),
        k("apply", "-f", "-", "--dry-run=client", "-o", "yaml", stdin=CONFIGMAP.replace("settings", "dry"),
          out="name: dry"),
        k("get", "cm", "dry", ns, code=1, out='configmaps "dry" not found'),
        k("create", "configmap", "generated", ns, "--from-literal=a=b", "--dry-run=client", "-o", "json",
          out='"a": "b"'),
        k("get", "cm", ns, "--chunk-size=1", "-o", "name", out=("configmap/kube-root-ca.crt", "configmap/settings")),
        k("get", "--raw", f"/api/v1/namespaces/{NAMESPACE}/configmaps?limit=1",
          out=('"continue":"', '"remainingItemCount":1')),
        k("delete", "cm", "settings", ns, out='configmap "settings" deleted'),
        k("delete", "cm", "settings", ns, code=1, out='configmaps "settings" not found'),
        k("delete", "cm", "settings", ns, "--ignore-not-found"),
        k("delete", "-f", "-", stdin=SECRET, out='secret "credentials" deleted'),
        k("create", "-f", "-", stdin=CONFIGMAP, out="configmap/settings created"),
        k("delete", "cm", "-l", "tier=config", ns, out='configmap "settings" deleted'),
        k("get", "cm", "-l", "tier=config", ns, pattern=r"\A\Z"),
    ]


def workload_steps(ns: str) -> list[Step]:
    return [
        k("apply", "-f", "-", stdin=DEPLOYMENT, out="deployment.apps/web created"),
        k("rollout", "status", "deployment/web", ns, "--timeout=90s", timeout=100,
          out='deployment "web" successfully rolled out'),
        k("get", "deploy", ns, out=("READY", "UP-TO-DATE", "AVAILABLE", "2/2")),
        k("get", "deploy", "web", ns, "-o", "wide", out=("CONTAINERS", "IMAGES", "SELECTOR", "app=web")),
        k("get", "rs", ns, "-l", "app=web", out=("DESIRED", "CURRENT", "READY")),
        k("get", "pods", ns, "-l", "app=web", out=("Running", "1/1")),
        k("get", "pods", ns, "-o", "wide", out=("IP", "NODE")),
        k("get", "all", ns, out=("deployment.apps/web", "replicaset.apps/web-", "pod/web-")),
        k("describe", "deployment", "web", ns, out=("Replicas:", "RollingUpdateStrategy:", "Events:")),
        k("describe", "pods", "-l", "app=web", ns, out=("Containers:", "httpd:", "Conditions:")),
        k("logs", "deployment/web", ns, out="started"),
        k("logs", "-l", "app=web", ns, "--prefix", out="[pod/web-"),
        k("logs", "deployment/web", ns, "--timestamps", pattern=r"^\d{4}-\d\d-\d\dT\S+ started"),
        k("logs", "deployment/web", ns, "--since=1h", out="started"),
        k("logs", "deployment/web", ns, "--limit-bytes=3", pattern=r"^sta$"),
        k("logs", "deployment/web", ns, "--since-time=2099-01-01T00:00:00Z", pattern=r"\A\Z"),
        k("exec", "deployment/web", ns, "--", "cat", "/www/index.html", out="web web-"),
        k("exec", "deployment/web", ns, "--", "sh", "-c", "exit 3", code=3),
        k("scale", "deployment/web", ns, "--replicas=3", out="deployment.apps/web scaled"),
        k("rollout", "status", "deployment/web", ns, "--timeout=90s", timeout=100, out="successfully rolled out"),
        k("get", "deploy", "web", ns, "-o", "jsonpath={.status.readyReplicas}", out="3"),
        k("scale", "deployment/web", ns, "--replicas=2", "--current-replicas=5", code=1,
          out="Expected replicas to be 5, was 3"),
        k("scale", "deployment/web", ns, "--replicas=2", out="deployment.apps/web scaled"),
        k("set", "env", "deployment/web", ns, "COLOR=red", out="deployment.apps/web env updated"),
        k("rollout", "status", "deployment/web", ns, "--timeout=90s", timeout=100, out="successfully rolled out"),
        k("set", "env", "deployment/web", ns, "--list", out="COLOR=red"),
        k("set", "resources", "deployment/web", ns, "--limits=memory=64Mi",
          out="deployment.apps/web resource requirements updated"),
        k("set", "image", "deployment/web", ns, "httpd=busybox:latest", out="deployment.apps/web image updated"),
        k("rollout", "status", "deployment/web", ns, "--timeout=90s", timeout=100, out="successfully rolled out"),
        k("rollout", "history", "deployment/web", ns, out=("REVISION", "CHANGE-CAUSE")),
        k("rollout", "history", "deployment/web", ns, "--revision=1", out=("revision #1", "Image:\tbusybox")),
        k("rollout", "undo", "deployment/web", ns, out="deployment.apps/web rolled back"),
        k("rollout", "status", "deployment/web", ns, "--timeout=90s", timeout=100, out="successfully rolled out"),
        k("rollout", "pause", "deployment/web", ns, out="deployment.apps/web paused"),
        k("rollout", "resume", "deployment/web", ns, out="deployment.apps/web resumed"),
        k("rollout", "restart", "deployment/web", ns, out="deployment.apps/web restarted"),
        k("rollout", "status", "deployment/web", ns, "--timeout=90s", timeout=100, out="successfully rolled out"),
        k("expose", "deployment", "web", ns, "--port=80", "--target-port=8080", out="service/web exposed"),
        k("get", "svc", "web", ns, out=("TYPE", "CLUSTER-IP", "ClusterIP", "80/TCP")),
        k("get", "svc", "web", ns, "-o", "wide", out="SELECTOR"),
        k("describe", "svc", "web", ns, out=("Selector:", "app=web", "TargetPort:")),
        k("get", "endpoints", "web", ns, out=":8080"),
        k("get", "endpointslices", ns, "-l", "kubernetes.io/service-name=web", out=("ADDRESSTYPE", "IPv4")),
        k("wait", "--for=condition=Available", "deployment/web", ns, "--timeout=60s",
          out="deployment.apps/web condition met"),
        k("wait", "--for=jsonpath={.status.readyReplicas}=2", "deployment/web", ns, "--timeout=60s",
          out="condition met"),
        k("get", "events", ns, out=("REASON", "ScalingReplicaSet")),
        k("events", ns, "--for", "deployment/web", out="Scaled"),
        k("get", "events", ns, "--field-selector", "reason=ScalingReplicaSet", "-o", "name", out="event/web."),
        k("apply", "-f", "-", stdin=JOB, out="job.batch/once created"),
        k("wait", "--for=condition=complete", "job/once", ns, "--timeout=60s", timeout=70,
          out="job.batch/once condition met"),
        k("get", "jobs", ns, out=("COMPLETIONS", "1/1")),
        k("logs", "job/once", ns, out="job done"),
        k("describe", "job", "once", ns, out=("Pods Statuses:", "1 Succeeded")),
        k("apply", "-f", "-", stdin=CRONJOB, out="cronjob.batch/nightly created"),
        k("get", "cronjobs", ns, out=("SCHEDULE", "0 3 * * *")),
        k("delete", "job", "once", ns, out='job.batch "once" deleted'),
        k("delete", "svc", "web", ns, out='service "web" deleted'),
    ]


def pod_steps(ns: str) -> list[Step]:
    return [
        k("run", "sleeper", ns, "--image=busybox", "--restart=Never", "--", "sh", "-c",
          "echo sleeper up; exec sleep 3600", out="pod/sleeper created"),
        k("wait", "--for=condition=Ready", "pod/sleeper", ns, "--timeout=60s", timeout=70,
          out="pod/sleeper condition met"),
        k("get", "pod", "sleeper", ns, "-o", "jsonpath={.status.phase}", out="Running"),
        k("get", "pod", "sleeper", ns, "-o", "custom-columns=NAME:.metadata.name,IP:.status.podIP,NODE:.spec.nodeName",
          pattern=r"sleeper\s+10\.\d+\.\d+\.\d+\s+\S+"),
        k("get", "pod", "sleeper", ns, "-o", "go-template={{range .status.containerStatuses}}{{.name}}:{{.ready}}{{end}}",
          out="sleeper:true"),
        k("logs", "sleeper", ns, out="sleeper up"),
        k("logs", "pod/sleeper", ns, "--tail=1", out="sleeper up"),
        k("exec", "sleeper", ns, "--", "hostname", out="sleeper"),
        k("exec", "sleeper", ns, "-c", "sleeper", "--", "sh", "-c", "echo $((6*7))", out="42"),
        k("exec", "-i", "sleeper", ns, "--", "cat", stdin="through stdin\n", out="through stdin"),
        k("exec", "sleeper", ns, "-c", "nope", "--", "true", code=1, out="container nope is not valid"),
        k("cp", os.path.join(TEMPLATES, "names.tmpl"), f"{NAMESPACE}/sleeper:/tmp/names.tmpl"),
        k("exec", "sleeper", ns, "--", "cat", "/tmp/names.tmpl", out="{{range .items}}"),
        k("cp", f"{NAMESPACE}/sleeper:/tmp/names.tmpl", os.path.join(TEMPLATES, "back.tmpl")),
        k("exec", "-it", "sleeper", ns, "--", "sh", terminal=(
            Exchange("# ", "echo answer=$((6*7)); tty; stty size\r"), Exchange("30 100", "exit 5\r")),
          code=5, out=("answer=42", "/dev/pts/0", "command terminated with exit code 5")),
        k("debug", "-it", "sleeper", ns, "--image=busybox", "--target=sleeper", "--container=debugger", "--", "sh",
          terminal=(Exchange("try pressing enter"), Exchange("# ", "ps -o pid,args\r", press_enter=True),
                    Exchange("sleep 3600", "exit 0\r")),
          timeout=90, out='Targeting container "sleeper"', pattern=r"\n\s*1 sleep 3600"),
        k("get", "pod", "sleeper", ns, "-o", "jsonpath={.spec.ephemeralContainers[0].targetContainerName}",
          out="sleeper"),
        k("debug", "sleeper", ns, "--image=busybox", "--target=sleeper", "--container=later", "--stdin", "--tty",
          "--attach=false", "--", "sh"),
        k("wait", "pod/sleeper", ns, "--timeout=60s",
          "--for=jsonpath={.status.ephemeralContainerStatuses[?(@.name==\"later\")].state.running.startedAt}",
          timeout=70, out="condition met"),
        k("attach", "-it", "sleeper", ns, "-c", "later", terminal=(
            Exchange("# ", "echo attached=$((2*21)); exit 3\r", press_enter=True), Exchange("attached=42")),
          out="attached=42"),
        k("wait", "pod/sleeper", ns, "--timeout=60s",
          "--for=jsonpath={.status.ephemeralContainerStatuses[?(@.name==\"later\")].state.terminated.exitCode}=3",
          timeout=70, out="condition met"),
        k("get", "pod", "sleeper", ns, "-o", "jsonpath={.spec.ephemeralContainers[*].name}", out="debugger later"),
        k("annotate", "pod", "sleeper", ns, "checked=yes", out="pod/sleeper annotated"),
        k("label", "pod", "sleeper", ns, "role=sleeper", out="pod/sleeper labeled"),
        k("get", "pods", ns, "-l", "role=sleeper", "-o", "name", out="pod/sleeper"),
        k("get", "pod", "sleeper", ns, "-o", "yaml", out=("restartPolicy: Never", "qosClass: BestEffort")),
        k("describe", "pod", "sleeper", ns, out=("Status:", "Running", "IP:", "Events:", "Started")),
        k("get", "events", ns, "--field-selector", "involvedObject.name=sleeper",
          "-o", "jsonpath={.items[*].involvedObject.fieldPath}", out="spec.containers{sleeper}"),
        k("run", "oneshot", ns, "--image=busybox", "--restart=Never", "--rm", "-i", "--", "echo", "attached output",
          timeout=90, out="attached output"),
        k("get", "pod", "oneshot", ns, code=1, out="not found"),
        k("delete", "pod", "sleeper", ns, "--grace-period=0", "--force", out='pod "sleeper" force deleted'),
        k("get", "pods", ns, "-l", "role=sleeper", pattern=r"\A\Z"),
    ]


def server_side_steps(ns: str) -> list[Step]:
    """Server-side apply, dry runs, diff and explain (the schema and apply work of issue 12)."""
    changed = CONFIGMAP.replace("name: settings", "name: applied").replace("color: blue", "color: red")
    return [
        k("explain", "pods.spec.containers.image", out=("KIND:", "Pod", "FIELD: image")),
        k("explain", "deployment.spec.strategy", out=("rollingUpdate", "type")),
        k("explain", "frobnicators", code=1, out="doesn't have a resource type"),
        k("apply", "--server-side", "-f", "-", stdin=CONFIGMAP.replace("name: settings", "name: applied"),
          out="configmap/applied serverside-applied"),
        k("get", "cm", "applied", ns, "-o", "jsonpath={.metadata.managedFields[0].manager}", out="kubectl"),
        k("diff", "-f", "-", stdin=changed, code=1, out=("-  color: blue", "+  color: red")),
        k("apply", "--server-side", "--dry-run=server", "-f", "-", stdin=changed,
          out="configmap/applied serverside-applied (server dry run)"),
        k("get", "cm", "applied", ns, "-o", "jsonpath={.data.color}", out="blue"),
        k("apply", "--server-side", "--field-manager=other", "-f", "-", stdin=changed, code=1,
          out=("conflict", ".data.color")),
        k("apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", "-", stdin=changed,
          out="configmap/applied serverside-applied"),
        k("get", "cm", "applied", ns, "-o", "jsonpath={.data.color}", out="red"),
        k("delete", "cm", "applied", ns, "--dry-run=server", out='configmap "applied" deleted (server dry run)'),
        k("get", "cm", "applied", ns, "-o", "name", out="configmap/applied"),
        k("create", "-f", "-", "--dry-run=server", "-o", "name", stdin=SECRET, out="secret/credentials"),
        k("get", "secret", "credentials", ns, code=1, out="not found"),
        k("delete", "cm", "applied", ns, out='configmap "applied" deleted'),
    ]


def protobuf_steps(ns: str) -> list[Step]:
    """kubectl's generators and `auth` send protobuf bodies (its typed clients)."""
    return [
        k("create", "configmap", "generated", ns, "--from-literal=a=b", out="configmap/generated created"),
        k("get", "cm", "generated", ns, "-o", "jsonpath={.data.a}", out="b"),
        k("create", "secret", "generic", "token", ns, "--from-literal=key=value", out="secret/token created"),
        k("create", "serviceaccount", "robot", ns, out="serviceaccount/robot created"),
        k("create", "token", "robot", ns, pattern=r"^ey[\w-]+\.[\w-]+\.[\w-]+$"),
        k("create", "namespace", "scratch", out="namespace/scratch created"),
        k("create", "deployment", "made", ns, "--image=busybox", "--replicas=0", out="deployment.apps/made created"),
        k("create", "service", "clusterip", "made", ns, "--tcp=80:8080", out="service/made created"),
        k("create", "job", "made", ns, "--image=busybox", "--", "true", out="job.batch/made created"),
        k("auth", "can-i", "delete", "pods", ns, out="yes"),
        k("auth", "can-i", "--list", ns, code=1),
        k("auth", "whoami", out=("Username", "admin", "system:masters")),
        k("auth", "whoami", "-o", "json", out='"kind": "SelfSubjectReview"'),
        k("delete", "namespace", "scratch", out='namespace "scratch" deleted'),
        k("delete", "job,deployment,service,sa,secret,cm", "made", "robot", "token", "generated", ns,
          "--ignore-not-found", out=('job.batch "made" deleted', 'configmap "generated" deleted')),
    ]


HPA_V2 = f"""
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: by-memory
  namespace: {NAMESPACE}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: scaled}}
  maxReplicas: 4
  metrics:
    - type: Resource
      resource: {{name: memory, target: {{type: AverageValue, averageValue: 100Mi}}}}
    - type: Resource
      resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 60}}}}
  behavior:
    scaleDown: {{stabilizationWindowSeconds: 60}}
"""
HPA_V1_INVERTED = f"""
apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata:
  name: inverted
  namespace: {NAMESPACE}
spec:
  minReplicas: 5
  maxReplicas: 2
"""


def autoscaling_steps(ns: str) -> list[Step]:
    """`kubectl autoscale` (an autoscaling/v1 object, sent as protobuf) and the one
    HorizontalPodAutoscaler read, patched and listed at autoscaling/v1 and v2."""
    v1, v2 = "horizontalpodautoscalers.v1.autoscaling", "horizontalpodautoscalers.v2.autoscaling"
    columns = ("NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE")
    return [
        k("create", "deployment", "scaled", ns, "--image=busybox", "--replicas=0", out="deployment.apps/scaled created"),
        k("autoscale", "deployment", "scaled", ns, "--min=1", "--max=5", "--cpu-percent=50",
          out="horizontalpodautoscaler.autoscaling/scaled autoscaled"),
        k("get", "hpa", ns, out=(*columns, "Deployment/scaled", "cpu: <unknown>/50%")),
        k("get", "hpa.v1.autoscaling", "scaled", ns, out=(*columns, "cpu: <unknown>/50%")),
        k("get", v1, ns, out=(*columns, "Deployment/scaled")),
        k("get", v1, "scaled", ns, "-o", "jsonpath={.apiVersion} {.spec.targetCPUUtilizationPercentage}",
          out="autoscaling/v1 50"),
        k("get", v2, "scaled", ns, "-o", "jsonpath={.apiVersion} {.spec.metrics[0].resource.target.averageUtilization}",
          out="autoscaling/v2 50"),
        k("patch", v1, "scaled", ns, "-p", '{"spec":{"targetCPUUtilizationPercentage":70}}',
          out="horizontalpodautoscaler.autoscaling/scaled patched"),
        k("get", "hpa", "scaled", ns, out="cpu: <unknown>/70%"),
        k("describe", "hpa", "scaled", ns, out=("Reference:", "Deployment/scaled", "Min replicas:", "Max replicas:")),
        k("apply", "-f", "-", stdin=HPA_V2, out="horizontalpodautoscaler.autoscaling/by-memory created"),
        k("get", "hpa", "by-memory", ns, out="memory: <unknown>/100Mi, cpu: <unknown>/60%"),
        k("get", v1, "by-memory", ns, "-o", "yaml",
          out=("targetCPUUtilizationPercentage: 60", "autoscaling.alpha.kubernetes.io/metrics",
               "targetAverageValue", "autoscaling.alpha.kubernetes.io/behavior", "StabilizationWindowSeconds")),
        k("label", v1, "by-memory", ns, "tier=web", out="horizontalpodautoscaler.autoscaling/by-memory labeled"),
        k("get", "hpa", "by-memory", ns, "-o", "jsonpath={.spec.metrics[0].resource.name} "
          "{.spec.behavior.scaleDown.stabilizationWindowSeconds} {.metadata.labels.tier}", out="memory 60 web"),
        k("create", "-f", "-", stdin=HPA_V1_INVERTED, code=1,
          out=("spec.scaleTargetRef.kind: Required value", "spec.scaleTargetRef.name: Required value",
               "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`")),
        k("delete", "hpa", "scaled", "by-memory", ns, out='horizontalpodautoscaler.autoscaling "scaled" deleted'),
        k("delete", "deployment", "scaled", ns, out='deployment.apps "scaled" deleted'),
    ]


def scheduling_steps(ns: str, node: str = "NODE") -> list[Step]:
    """taint, cordon, uncordon and drain of the cluster's node (the scheduler work of issue 13)."""
    return [
        k("taint", "nodes", node, "battery=yes:NoSchedule", out=f"node/{node} tainted"),
        k("get", "node", node, "-o", "jsonpath={.spec.taints[*].key}", out="battery"),
        k("taint", "nodes", node, "battery=yes:NoSchedule-", out=f"node/{node} untainted"),
        k("cordon", node, out=f"node/{node} cordoned"),
        k("get", "nodes", out="SchedulingDisabled"),
        k("uncordon", node, out=f"node/{node} uncordoned"),
        k("drain", node, "--ignore-daemonsets", "--dry-run=client", out=f"node/{node} cordoned (dry run)"),
        k("get", "node", node, "-o", "jsonpath={.spec.unschedulable}", pattern=r"\A\Z"),
    ]


GROUPS = [cluster_and_config_steps, object_steps, workload_steps, pod_steps, server_side_steps, protobuf_steps,
          autoscaling_steps, scheduling_steps]
TEMPLATES = tempfile.mkdtemp(prefix="kubectl-battery-")
with open(os.path.join(TEMPLATES, "names.tmpl"), "w") as file:
    file.write("{{range .items}}{{.metadata.name}};{{end}}")
with open(os.path.join(TEMPLATES, "columns.txt"), "w") as file:
    file.write("NAME TIER\nmetadata.name metadata.labels.tier\n")


def test_cluster_information_configuration_and_raw_paths(cluster):
    run(cluster, cluster_and_config_steps(NAMESPACE_TOKEN))


def test_objects_in_every_output_format_and_every_way_of_changing_them(cluster):
    run(cluster, object_steps(NAMESPACE_TOKEN))


def test_a_deployment_rolled_scaled_exposed_and_undone_and_a_job_run(cluster):
    run(cluster, workload_steps(NAMESPACE_TOKEN))


def test_a_pod_run_exec_copied_to_and_from_attached_and_force_deleted(cluster):
    run(cluster, pod_steps(NAMESPACE_TOKEN))
    with open(os.path.join(TEMPLATES, "back.tmpl")) as copied:
        assert copied.read() == "{{range .items}}{{.metadata.name}};{{end}}"


def test_server_side_apply_dry_runs_diff_and_explain(cluster):
    run(cluster, server_side_steps(NAMESPACE_TOKEN))


def test_generators_and_auth_which_send_protobuf(cluster):
    run(cluster, protobuf_steps(NAMESPACE_TOKEN))


def test_kubectl_autoscale_and_one_autoscaler_at_autoscaling_v1_and_v2(cluster):
    run(cluster, autoscaling_steps(NAMESPACE_TOKEN))


def test_taint_cordon_and_drain_the_node(cluster):
    nodes = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    run(cluster, scheduling_steps(NAMESPACE_TOKEN, nodes[0]["metadata"]["name"]))


def test_port_forward_and_proxy_reach_the_deployment(cluster):
    """The two long-running commands: started, read from, and stopped."""
    pod = json.loads(cluster.kubectl("get", "pods", "-n", NAMESPACE, "-l", "app=web", "-o", "json").stdout)
    name = pod["items"][0]["metadata"]["name"]
    forward = subprocess.Popen([KUBECTL, "port-forward", "-n", NAMESPACE, f"pod/{name}", ":8080"], env=cluster.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proxy = subprocess.Popen([KUBECTL, "proxy", "--port=0"], env=cluster.env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert forward.stdout is not None and proxy.stdout is not None
        forwarding = forward.stdout.readline()
        port = int(re.search(r"127\.0\.0\.1:(\d+) -> 8080", forwarding).group(1))  # type: ignore[union-attr]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.read().decode() == f"web {name}\n"
        serving = proxy.stdout.readline()
        proxy_port = int(re.search(r"127\.0\.0\.1:(\d+)", serving).group(1))  # type: ignore[union-attr]
        with urllib.request.urlopen(f"http://127.0.0.1:{proxy_port}/api/v1/namespaces/{NAMESPACE}/pods/{name}",
                                    timeout=10) as response:
            assert json.loads(response.read())["metadata"]["name"] == name
    finally:
        for process in (forward, proxy):
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_deleting_the_namespace_removes_everything_in_it(cluster):
    run(cluster, [
        k("delete", "deployment", "web", "-n", NAMESPACE, out='deployment.apps "web" deleted'),
        k("delete", "cronjob", "nightly", "-n", NAMESPACE, out='cronjob.batch "nightly" deleted'),
        k("delete", "namespace", NAMESPACE, "--timeout=90s", timeout=100, out=f'namespace "{NAMESPACE}" deleted'),
        k("get", "namespace", NAMESPACE, code=1, out="not found"),
        k("delete", "namespace", "kube-public", code=1, out="forbidden"),
    ])
    shutil.rmtree(TEMPLATES, ignore_errors=True)
    assert yaml.safe_load(cluster.kubectl("get", "ns", "-o", "yaml").stdout)["kind"] == "List"
