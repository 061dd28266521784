"""Crash-loop back-off: an immediate first restart, then Kubernetes' 10 s doubling curve capped at 300 s, and when it starts over."""

from minikube_py.agent.backoff import CrashLoopBackOff, format_duration

KEY = ("pod-uid", "main", "spec-hash")


def crash_loop(backoff: CrashLoopBackOff, crashes: int, ran_for: float = 1.0) -> list[float]:
    """Each restart happens as soon as allowed; each run lasts `ran_for` seconds."""
    delays, now = [], 0.0
    for crash in range(crashes):
        started = now
        finished = started + ran_for
        delay = backoff.restart_delay(KEY, f"container-{crash}", started, finished)
        delays.append(delay)
        now = finished + delay
    return delays


def test_the_first_restart_is_immediate_then_delays_double_from_ten_seconds_and_stop_at_five_minutes():
    assert crash_loop(CrashLoopBackOff(), 8) == [0, 10, 20, 40, 80, 160, 300, 300]


def test_asking_twice_about_the_same_exit_does_not_advance_the_curve():
    backoff = CrashLoopBackOff()
    assert backoff.restart_delay(KEY, "a", 0, 1) == 0
    assert backoff.restart_delay(KEY, "a", 0, 1) == 0
    assert backoff.restart_delay(KEY, "b", 1, 2) == 10
    assert backoff.restart_delay(KEY, "b", 1, 2) == 10
    assert backoff.restart_delay(KEY, "c", 12, 13) == 20


def test_a_clean_ten_minute_run_starts_the_curve_over():
    backoff = CrashLoopBackOff()
    crash_loop(backoff, 5)  # the next wait would be 80 s
    # Restarted at 1000, it crashes 601 s later: restarted at once, and the next crash waits 10 s.
    assert backoff.restart_delay(KEY, "long-run", 1000.0, 1000.0 + 601) == 0
    assert backoff.restart_delay(KEY, "quick", 1601.0, 1602.0) == 10


def test_a_run_of_exactly_ten_minutes_does_not_start_the_curve_over():
    backoff = CrashLoopBackOff()
    crash_loop(backoff, 3)  # waits 0, 10, 20, restarting at 33; the next would be 40
    assert backoff.restart_delay(KEY, "ten-minutes", 33.0, 633.0) == 40


def test_a_crash_ten_minutes_after_the_back_off_ended_starts_the_curve_over():
    backoff = CrashLoopBackOff()
    assert backoff.restart_delay(KEY, "a", 0, 1) == 0
    assert backoff.restart_delay(KEY, "b", 1, 2) == 10
    # Restarted by something else at 700 (a new sandbox), but its back-off ended at 12:
    # kubelet's entry was last updated more than 10 min before this crash.
    assert backoff.restart_delay(KEY, "c", 700, 701) == 0


def test_the_wait_in_back_off_does_not_count_as_a_clean_run():
    backoff = CrashLoopBackOff()
    # Runs of 1 s from 0: the seventh crash, at 317, waits 300 s.
    assert crash_loop(backoff, 7) == [0, 10, 20, 40, 80, 160, 300]
    # Restarted at 617 after its 5 min back-off, it ran 301 s: not 10 min of clean running.
    assert backoff.restart_delay(KEY, "after-five-minutes", 617, 918) == 300


def test_a_changed_container_spec_has_its_own_curve():
    backoff = CrashLoopBackOff()
    crash_loop(backoff, 3)
    assert backoff.restart_delay(("pod-uid", "main", "new-hash"), "x", 0, 1) == 0


def test_a_tuned_curve_is_followed():
    assert crash_loop(CrashLoopBackOff(initial=1, maximum=4), 5) == [0, 1, 2, 4, 4]


def test_forgetting_a_pod_drops_its_entries():
    backoff = CrashLoopBackOff()
    crash_loop(backoff, 3)
    backoff.forget("pod-uid")
    assert backoff.restart_delay(KEY, "again", 0, 1) == 0


def test_durations_print_like_go():
    assert [format_duration(s) for s in (0.5, 10, 20, 80, 160, 300, 1.5)] == [
        "500ms", "10s", "20s", "1m20s", "2m40s", "5m0s", "1.5s"]
