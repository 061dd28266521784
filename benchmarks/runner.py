"""One benchmark run: start a private cluster, time every operation (interleaved with podman's when
asked), measure memory and idle CPU from /proc, and collect it all as `Results`.

The order is fixed so runs compare: pod start (sequential, ours then podman's, pod by pod), pod
deletion (same), a Deployment scaled from 0, memory and idle CPU with those replicas running, a
rolling update of them, podman's memory and idle CPU at the same pod count, store and API
throughput (benchmarks/store_api.py), and last pod start in a burst. A phase that fails is recorded in the
notes, its rows stay "not measured", and the run goes on; everything made is removed at the end.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import random
import string
import subprocess
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone

from benchmarks import procfs, store_api
from benchmarks.minikube_side import BenchCluster, MinikubePods, make_busybox_rootfs_tarball
from benchmarks.podman_side import PodmanHost, PodmanPods, podman_installed
from benchmarks.report import Results, Row, Target
from benchmarks.statistics import Summary
from minikube_py.client.transport import HttpTransport

# The container exits on TERM so a default-grace deletion does not wait the full 30 s; as PID 1 of
# its pid namespace a bare `sleep` would ignore TERM.
SLEEP_COMMAND = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
KB_PER_MB = 1024


@dataclass
class Options:
    quick: bool = False
    vs: str | None = None
    pods: int = 50
    replicas: int = 100
    idle_seconds: float = 30.0
    store_writes: int = 5000
    api_creates: int = 2500
    watch_events: int = 500

    @classmethod
    def for_mode(cls, quick: bool, vs: str | None, pods: int | None) -> "Options":
        if quick:
            return cls(quick=True, vs=vs, pods=pods or 5, replicas=5, idle_seconds=3.0,
                       store_writes=500, api_creates=250, watch_events=100)
        return cls(quick=False, vs=vs, pods=pods or 50)


def describe_machine() -> dict:
    with open("/proc/meminfo") as file:
        memory_kb = int(file.readline().split()[1])
    model = ""
    with open("/proc/cpuinfo") as file:
        for line in file:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    podman = subprocess.run(["podman", "--version"], capture_output=True, text=True).stdout.strip() if podman_installed() else "not installed"
    cpus = os.cpu_count()
    memory_cgroups = kernel_memory_cgroups()
    return {"kernel": platform.release(), "cpus": cpus, "cpu_model": model,
            "memory_gib": round(memory_kb / 1048576, 1), "python": platform.python_version(), "podman": podman,
            "memory_cgroups": memory_cgroups,
            "description": f"{cpus} vCPU {model}, {memory_kb / 1048576:.1f} GiB, Linux {platform.release()}, "
                           f"Python {platform.python_version()}, {podman}; {memory_cgroups} memory cgroups in the "
                           "kernel at the start (live and dying)"}


def kernel_memory_cgroups() -> int:
    """How many memory cgroups the kernel holds, dying ones included (/proc/cgroups).

    Removed cgroups whose page cache is still charged linger as "dying" until the memory is
    reclaimed; thousands of them (left by earlier runs of any container engine) made every cgroup
    operation slower and doubled the rolling-update time here. `sync; echo 3 >
    /proc/sys/vm/drop_caches` frees them; the count is recorded so a slow run can be recognised.
    """
    try:
        with open("/proc/cgroups") as file:
            for line in file:
                fields = line.split()
                if fields and fields[0] == "memory":
                    return int(fields[2])
    except OSError:
        pass
    return 0


class Run:
    def __init__(self, options: Options):
        self.options = options
        self.run_id = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        self.results = Results(started=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                               machine=describe_machine(),
                               options={"quick": options.quick, "vs": options.vs, "pods": options.pods,
                                        "replicas": options.replicas, "idle_seconds": options.idle_seconds})
        self.failed_phases: list[str] = []
        # Raw figures gathered by the phases; rows are built from them at the end.
        self.figures: dict[str, dict[str, float]] = {"minikube-py": {}, "podman": {}}
        self.samples: dict[str, dict[str, list[float]]] = {"minikube-py": {}, "podman": {}}

    def name(self, kind: str, index: int) -> str:
        return f"bench-{self.run_id}-{kind}{index}"

    def phase(self, title: str, function, *args) -> None:
        print(f"[benchmarks] {title} ...", flush=True)
        started = time.perf_counter()
        try:
            function(*args)
        except Exception as error:
            self.failed_phases.append(title)
            self.results.notes.append(f"phase '{title}' failed: {type(error).__name__}: {error}")
            traceback.print_exc()
        print(f"[benchmarks] {title}: {time.perf_counter() - started:.1f} s", flush=True)

    # -- the run -----------------------------------------------------------------------------------
    def execute(self) -> Results:
        # First, on a quiet host: the control-plane micro-benchmarks. Measured after the pod phases,
        # they also timed the kernel's background teardown of a hundred pods (1,300 creates/s
        # alone, 720 right after).
        self.phase("store and API throughput", self.store_and_api)
        with tempfile.TemporaryDirectory(prefix="minikube-py-bench-") as scratch, ExitStack() as stack:
            tarball = make_busybox_rootfs_tarball(os.path.join(scratch, "busybox-rootfs.tar"))
            cluster = BenchCluster()
            print(f"[benchmarks] starting cluster {cluster.name} ({cluster.pod_cidr}) in {cluster.home}", flush=True)
            cluster.start()
            stack.callback(self._stop_cluster, cluster)
            cluster.ensure_busybox(tarball)
            ours = MinikubePods(cluster, self.run_id)
            stack.callback(ours.close)
            peer = None
            if self.options.vs == "podman":
                if podman_installed():
                    host = stack.enter_context(PodmanHost())
                    peer = PodmanPods(host, host.import_busybox(tarball))
                else:
                    self.results.notes.append("podman is not installed, so its column is empty; to compare, "
                                              "install it (apt-get install podman crun catatonit) and rerun")
            self.phase("pod start and deletion, sequential", self.pod_start_and_delete, ours, peer)
            self.phase("deployment scale-up, memory, idle CPU, rolling update", self.deployment, ours, cluster)
            if peer is not None:
                self.phase("podman memory and idle CPU", self.podman_memory_and_idle, peer)
            # Last: the burst is the hardest test of the node, and a failure there spoils nothing else.
            self.phase("pod start, burst", self.pod_start_burst, ours, peer)
        self.build_rows()
        return self.results

    def _stop_cluster(self, cluster: BenchCluster) -> None:
        leftovers = cluster.stop()
        if leftovers:
            self.results.notes.append(f"cluster {cluster.name} left these on the host after stop: {leftovers}")

    # -- phases ------------------------------------------------------------------------------------
    def pod_start_and_delete(self, ours: MinikubePods, peer: PodmanPods | None) -> None:
        sides = [ours] + ([peer] if peer else [])
        for side in sides:  # warm-up: podman builds its pause image on the first pod, we fill caches
            side.start_pod(self.name("warm", 0), SLEEP_COMMAND)
            side.delete_pod(self.name("warm", 0))
        for side in sides:
            self.samples[side.label]["start_sequential"] = []
            self.samples[side.label]["delete_sequential"] = []
        for index in range(self.options.pods):
            for side in sides:
                self.samples[side.label]["start_sequential"].append(side.start_pod(self.name("s", index), SLEEP_COMMAND))
        for index in range(self.options.pods):
            for side in sides:
                self.samples[side.label]["delete_sequential"].append(side.delete_pod(self.name("s", index)))

    def pod_start_burst(self, ours: MinikubePods, peer: PodmanPods | None) -> None:
        names = [self.name("b", index) for index in range(self.options.pods)]
        latencies, wall = ours.start_pods_at_once(names, SLEEP_COMMAND)
        self.samples["minikube-py"]["start_burst"] = latencies
        self.figures["minikube-py"]["burst_wall_s"] = wall
        ours.delete_pods_at_once(names)
        if peer is None:
            return
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            latencies = list(pool.map(lambda name: peer.start_pod(name, SLEEP_COMMAND), names))
        self.samples["podman"]["start_burst"] = latencies
        self.figures["podman"]["burst_wall_s"] = time.perf_counter() - started
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(peer.delete_pod, names))

    def deployment(self, ours: MinikubePods, cluster: BenchCluster) -> None:
        name = f"bench-{self.run_id}-web"
        replicas = self.options.replicas
        ours.create_deployment(name, SLEEP_COMMAND)
        try:
            seconds, series = ours.scale_up(name, replicas)
            self.figures["minikube-py"]["scale_up_s"] = seconds
            self.results.series["scale_up_ready"] = series.to_dict()
            roles = ours.pod_processes(name)
            roles["supervisor"] = [cluster.pid_of("supervisor")]
            roles["daemon"] = [cluster.pid_of("daemon")]
            self.record_memory("minikube-py", roles, replicas, tree_roles=("container",))
            self.record_idle_cpu("minikube-py", roles["daemon"] + roles["supervisor"])
            seconds, series = ours.rolling_update(name)
            self.figures["minikube-py"]["rolling_update_s"] = seconds
            self.results.series["rolling_update_ready"] = series.to_dict()
        finally:
            ours.delete_deployment(name)

    def podman_memory_and_idle(self, peer: PodmanPods) -> None:
        names = [self.name("m", index) for index in range(self.options.replicas)]
        try:
            for name in names:
                peer.start_pod(name, SLEEP_COMMAND)
            roles = peer.pod_processes(names)
            self.record_memory("podman", roles, len(names), tree_roles=("container",))
            self.record_idle_cpu("podman", roles["conmon"])
        finally:
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(lambda name: peer.host.podman("pod", "rm", "-f", "-t", "0", name, check=False), names))

    def record_memory(self, side: str, roles: dict[str, list[int]], pods: int, tree_roles: tuple[str, ...]) -> None:
        """kB per pod for each role; a container counts with its whole process tree."""
        parents = procfs.parent_map()
        for role, pids in roles.items():
            if role in tree_roles:
                pids = [pid for root in pids for pid in procfs.process_tree(root, parents)]
            memory = procfs.memory_of_all(pids)
            self.figures[side][f"{role}_rss_kb"] = memory.rss_kb / pods
            self.figures[side][f"{role}_pss_kb"] = memory.pss_kb / pods
            if role == "daemon":
                self.figures[side]["daemon_total_rss_kb"] = memory.rss_kb

    def record_idle_cpu(self, side: str, pids: list[int]) -> None:
        """CPU time of `pids` over the idle window, as percent of one core."""
        before = sum(procfs.cpu_seconds_of(pid) for pid in pids)
        started = time.monotonic()
        time.sleep(self.options.idle_seconds)  # the measurement window itself
        used = sum(procfs.cpu_seconds_of(pid) for pid in pids) - before
        self.figures[side]["idle_cpu_percent"] = 100.0 * used / (time.monotonic() - started)

    def store_and_api(self) -> None:
        figures = self.figures["minikube-py"]
        with tempfile.TemporaryDirectory(prefix="minikube-py-bench-store-") as directory:
            figures["store_writes_per_s"] = store_api.store_writes_per_second(directory, self.options.store_writes)
            self.samples["minikube-py"]["store_watch"] = store_api.store_watch_latency(self.options.watch_events)
            socket_path = os.path.join(directory, "api.sock")
            ready = multiprocessing.Event()
            server = multiprocessing.Process(target=store_api.serve, args=(socket_path, ready), daemon=True)
            server.start()
            try:
                if not ready.wait(30):
                    raise TimeoutError("the benchmark API server did not come up within 30 s")
                transport = HttpTransport(socket_path=socket_path)
                figures["api_creates_per_s"] = store_api.api_creates_per_second(transport, self.options.api_creates)
                self.samples["minikube-py"]["http_watch"] = store_api.http_watch_latency(transport, self.options.watch_events)
            finally:
                server.terminate()
                server.join()

    # -- rows --------------------------------------------------------------------------------------
    def build_rows(self) -> None:
        build_rows(self.results, self.figures, self.samples, self.options)
        start = {side: {variant: [seconds * 1000 for seconds in self.samples[side].get(f"start_{variant}", [])]
                        for variant in ("sequential", "burst")} for side in self.samples}
        self.results.series["pod_start_ms"] = start
        self.results.series["samples_s"] = self.samples


def _summary(samples: dict[str, list[float]], key: str) -> Summary | None:
    values = samples.get(key)
    return Summary.of(values) if values else None


def _pick(summary: Summary | None, attribute: str, scale: float) -> float | None:
    return getattr(summary, attribute) * scale if summary else None


def build_rows(results: Results, figures: dict[str, dict[str, float]], samples: dict[str, dict[str, list[float]]],
               options: Options) -> None:
    """Every row of the report, in a fixed order, whether or not its phase produced a figure."""
    ours_figures, podman_figures = figures["minikube-py"], figures.get("podman", {})
    ours_samples, podman_samples = samples["minikube-py"], samples.get("podman", {})
    pods, replicas, full = options.pods, options.replicas, not options.quick

    def timing_rows(key: str, title: str, percentiles: dict[str, Target | None], method: str) -> None:
        ours_summary, podman_summary = _summary(ours_samples, key), _summary(podman_samples, key)
        for attribute, target in percentiles.items():
            results.add(Row(f"{key}_{attribute}", f"{title}, {attribute}", "ms",
                            _pick(ours_summary, attribute, 1000), _pick(podman_summary, attribute, 1000),
                            target, method))

    timing_rows("start_sequential", f"pod start, sequential ({pods} pods)",
                {"p50": Target("<=", 40), "p90": None, "p99": Target("<=", 150)},
                "POST of a one-container busybox pod (bridge network) until the pods watch delivers it Running "
                "with every container running; one pod at a time, ours and podman's alternating. podman: "
                "`pod create` + `run -d --pod` until `run -d` returns (container running). One warm-up pod per "
                "side not counted.")
    timing_rows("start_burst", f"pod start, burst ({pods} pods created at once)",
                {"p50": None, "p99": None},
                f"all {pods} POSTs back to back; per pod, its POST until the watch shows it Running. podman: "
                f"{pods} `pod create` + `run -d` sequences in {pods} threads at once.")
    results.add(Row("burst_wall", f"pod start, burst: all {pods} Running", "s",
                    ours_figures.get("burst_wall_s"), podman_figures.get("burst_wall_s"),
                    method="first request until the last pod is Running."))
    timing_rows("delete_sequential", f"pod deletion to gone ({pods} pods)",
                {"p50": Target("<=", 40), "p99": None},
                "DELETE with the default grace period (the container's shell exits on TERM) until the watch "
                "delivers DELETED. podman: `pod rm -f -t 0`, which kills without a grace period: the semantics "
                "differ, podman's is the faster kind of deletion.")
    results.add(Row("scale_up", f"Deployment 0 → {replicas} Ready", "s", ours_figures.get("scale_up_s"),
                    target=Target("<=", 4), target_applies=full,
                    method="PATCH spec.replicas from 0 until the pods watch has seen every pod Ready (no probes); "
                           "no podman equivalent."))
    results.add(Row("rolling_update", f"rolling update of {replicas} replicas (25%/25%)", "s",
                    ours_figures.get("rolling_update_s"), target=Target("<=", 8), target_applies=full,
                    method="PATCH of a pod-template annotation until the Deployment's status says "
                           "`successfully rolled out` (kubectl rollout status rules, semantics.md 5.3); old "
                           "pods exit on TERM; no podman equivalent."))

    def per_pod(side_figures: dict[str, float], roles: tuple[str, ...], measure: str) -> float | None:
        values = [side_figures.get(f"{role}_{measure}_kb") for role in roles]
        return sum(values) / KB_PER_MB if values and None not in values else None

    ours_overhead, podman_overhead = ("pause", "supervisor"), ("conmon", "infra")
    for measure in ("rss", "pss"):
        results.add(Row(f"pod_overhead_{measure}", f"memory per pod, {measure.upper()}: runtime overhead at {replicas} pods",
                        "MB", per_pod(ours_figures, ours_overhead, measure), per_pod(podman_figures, podman_overhead, measure),
                        Target("<=", 3) if measure == "rss" else None,
                        method="from /proc/PID/smaps_rollup. Ours: the pause process plus the supervisor divided by "
                               "the pods. podman: conmon × 2 (infra and container) plus catatonit (infra)."))
    results.add(Row("container_rss", "memory per pod, RSS: container processes (sh + sleep)", "MB",
                    per_pod(ours_figures, ("container",), "rss"), per_pod(podman_figures, ("container",), "rss"),
                    method="the container's whole process tree, same busybox binary on both sides."))
    results.add(Row("control_plane_rss", f"control-plane RSS (daemon) at {replicas} pods", "MB",
                    (ours_figures["daemon_total_rss_kb"] / KB_PER_MB) if "daemon_total_rss_kb" in ours_figures else None,
                    target=Target("<=", 100), target_applies=full,
                    method="the daemon's RSS (store, API, controllers, scheduler, agent in one process); "
                           "podman has no daemon."))
    results.add(Row("control_plane_rss_per_pod", f"control-plane RSS per pod (daemon / {replicas})", "MB",
                    per_pod(ours_figures, ("daemon",), "rss"), method="the daemon's RSS divided by the pods."))
    results.add(Row("idle_cpu", f"idle control-plane CPU, {replicas} pods, {options.idle_seconds:g} s", "%",
                    ours_figures.get("idle_cpu_percent"), podman_figures.get("idle_cpu_percent"),
                    Target("<=", 1), target_applies=full,
                    method="utime + stime delta from /proc/PID/stat over the window, as % of one core. Ours: daemon "
                           "+ supervisor. podman: all its conmon processes (it has no daemon)."))
    results.add(Row("store_writes", "store writes/s (sqlite file, WAL)", "/s", ours_figures.get("store_writes_per_s"),
                    target=Target(">=", 3000),
                    method=f"benchmarks/store_api.py: {options.store_writes} pod creates, one per transaction."))
    results.add(Row("api_creates", "API pod creates/s (unix socket, one client)", "/s",
                    ours_figures.get("api_creates_per_s"), target=Target(">=", 1000),
                    method=f"benchmarks/store_api.py: {options.api_creates} POSTs over one keep-alive connection "
                           f"to an API server process (no agent, so pods are not started)."))
    for key, title, target, method in (
            ("http_watch", "watch latency over HTTP (create → event)", Target("<=", 5),
             "a POST over the socket until an HTTP watch client holds its ADDED event"),
            ("store_watch", "watch latency in the store (write → watcher)", None,
             "Store.create until a watcher thread in the same process holds the event")):
        summary = _summary(ours_samples, key)
        for attribute in ("p50", "p99"):
            results.add(Row(f"{key}_{attribute}", f"{title}, {attribute}", "ms", _pick(summary, attribute, 1000),
                            target=target if attribute == "p50" else None,
                            method=f"benchmarks/store_api.py: {method}; {options.watch_events} writes, one in "
                                   f"flight at a time."))
