"""What the kernel says a process costs: resident memory and CPU time, read from /proc.

The memory and idle-CPU benchmarks never ask the system under test about itself; they read
`/proc/PID/smaps_rollup` (RSS and PSS, the proportional share that splits pages shared between
processes) and `/proc/PID/stat` (utime + stime in clock ticks) for the processes each side runs
per pod, and a parent map so a container's whole process tree is counted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Memory:
    rss_kb: int
    pss_kb: int

    def __add__(self, other: "Memory") -> "Memory":
        return Memory(self.rss_kb + other.rss_kb, self.pss_kb + other.pss_kb)


NO_MEMORY = Memory(0, 0)


def memory_of(pid: int) -> Memory:
    """RSS and PSS of one process in kB; zero for a process that has gone."""
    values = {"Rss:": 0, "Pss:": 0}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as file:
            for line in file:
                fields = line.split()
                if fields and fields[0] in values:
                    values[fields[0]] = int(fields[1])
    except (FileNotFoundError, ProcessLookupError):
        return NO_MEMORY
    return Memory(values["Rss:"], values["Pss:"])


def memory_of_all(pids: list[int]) -> Memory:
    total = NO_MEMORY
    for pid in pids:
        total = total + memory_of(pid)
    return total


def cpu_seconds_of(pid: int) -> float:
    """utime + stime of one process in seconds (its own, not its children's)."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            text = file.read()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    # The command name (field 2) may hold spaces and parentheses; the fields after the last ')' are fixed.
    fields = text[text.rindex(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS_PER_SECOND


def parent_map() -> dict[int, int]:
    """pid -> parent pid for every process on the host, in one pass over /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                text = file.read()
        except OSError:
            continue
        parents[int(entry)] = int(text[text.rindex(")") + 2:].split()[1])
    return parents


def process_tree(root: int, parents: dict[int, int]) -> list[int]:
    """root and all its descendants, given a parent map."""
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def command_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as file:
            return file.read().strip()
    except OSError:
        return ""
