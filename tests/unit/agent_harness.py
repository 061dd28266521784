"""A node agent wired to an in-memory API, a FakeRuntime and a FakeClock, for the agent's unit tests."""

from __future__ import annotations

from minikube_py.agent import AgentConfig, InMemoryIpam, NodeAgent
from minikube_py.apiserver.registry import Registry
from minikube_py.client.api import ApiClient
from minikube_py.clock import FakeClock
from minikube_py.runtime.fake import FakeRuntime
from minikube_py.store import Store

NODE = "node1"


class AgentHarness:
    def __init__(self, home, registry: Registry | None = None, runtime: FakeRuntime | None = None,
                 ipam: InMemoryIpam | None = None, clock: FakeClock | None = None):
        self.home = str(home)
        self.home_path = home
        self.clock = clock or FakeClock()
        self.registry = registry or Registry(Store(":memory:"), clock=self.clock)
        self.client = ApiClient.local(self.registry)
        self.runtime = runtime or FakeRuntime(self.clock)
        self.ipam = ipam or InMemoryIpam("10.244.0.0/24")
        resolv = home / "host-resolv.conf"
        resolv.write_text("nameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch example.test\n")
        self.agent = NodeAgent(self.client, self.runtime, NODE, self.ipam, self.clock, AgentConfig(
            home=self.home, cluster_name="test", gateway="10.244.0.1", prefix_len=24, host_resolv_conf=str(resolv),
            image_pulls_in_parallel=0))

    def start(self) -> None:
        """What NodeAgent.start does, without its threads."""
        self.agent.register_node()
        self.agent.pods.refresh()
        self.agent.adopt()
        self.sync()

    def restarted(self) -> "AgentHarness":
        """A new agent (the daemon came back) on the same API, runtime, IP pool, clock and home."""
        again = AgentHarness(self.home_path, registry=self.registry, runtime=self.runtime, ipam=self.ipam,
                             clock=self.clock)
        again.start()
        return again

    def stop_node(self) -> None:
        """`minikube-py stop` as the daemon does it: every pod stopped, then the runtime's one-pass removal."""
        self.agent.stop(stop_pods=True)
        self.runtime.shutdown(remove_all=True)

    def sync(self) -> None:
        self.agent.run_until_idle()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.sync()

    def create_pod(self, name: str, containers: list[dict], **spec) -> str:
        for container in containers:
            container.setdefault("image", "busybox")
            container.setdefault("command", ["sleep", "3600"])
        pod = self.registry.create("pods", "default", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": NODE, "containers": containers, **spec},
        })
        return pod["metadata"]["uid"]

    def pod(self, name: str) -> dict:
        return self.registry.get("pods", "default", name)

    def status(self, name: str, container: int = 0) -> dict:
        return self.pod(name)["status"]["containerStatuses"][container]

    def condition(self, name: str, type_: str) -> dict:
        return next(c for c in self.pod(name)["status"]["conditions"] if c["type"] == type_)

    def container_id(self, uid: str, name: str = "main") -> str:
        return self.runtime.container_for(uid, name).id

    def events(self) -> list[tuple[str, str]]:
        items = self.registry.list("events", "default")["items"]
        return [(event["reason"], event["message"]) for event in items]
