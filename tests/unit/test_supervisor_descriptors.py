"""The supervisor with a thousand pods holds over 2,000 descriptors: waiting on one numbered above
1,024 must work (select(2) cannot), and the open-files limit must leave room for them."""

import os
import resource

import pytest

from minikube_py.runtime.supervisor import raise_open_files_limit, readable


def test_a_descriptor_numbered_above_1024_can_be_waited_on():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 1200:
        pytest.skip(f"the hard open-files limit ({hard}) is below 1,200")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    read_end, write_end = os.pipe()
    try:
        assert read_end > 1024
        assert readable(read_end, 0.01) is False
        os.write(write_end, b"x")
        assert readable(read_end, 0.01) is True
    finally:
        for descriptor in held + [read_end, write_end]:
            os.close(descriptor)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_soft_open_files_limit_is_raised_to_the_hard_one():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
        raise_open_files_limit()
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
