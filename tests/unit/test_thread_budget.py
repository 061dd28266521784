"""The daemon's thread budget (issue 9: at most 64 threads at 1,000 idle pods): the controllers
and the scheduler cost their workers and nothing more, their two dozen informers one shared thread."""

from __future__ import annotations

import threading

from minikube_py.client.informer import IN_PROCESS_DISPATCHER
from tests.unit.fakes import FakeCluster


def test_the_control_loops_run_on_their_workers_and_one_informer_thread():
    from minikube_py.clock import Clock
    from minikube_py.daemon import ClusterConfig, control_loops

    cluster = FakeCluster()
    before = set(threading.enumerate())
    loops = control_loops(cluster.client, Clock(), ClusterConfig(name="t"), ca_pem="")
    try:
        for loop in loops:
            loop.run()
        informers = {informer for loop in loops for informer in loop.informers}
        assert len(informers) >= 20
        added = [thread for thread in threading.enumerate() if thread not in before]
        workers = sum(loop.workers for loop in loops)
        assert len(added) <= workers + 1, sorted(thread.name for thread in added)
        assert [thread.name for thread in added if not thread.name.endswith(tuple(f"-worker-{index}" for index in range(8)))] \
            in ([], [IN_PROCESS_DISPATCHER.name])
    finally:
        for loop in loops:
            loop.stop()
        cluster.close()
