"""Builds the pause binary from pause.c (and the container monitor from monitor.c) with the system C compiler, once per source version.

Every sandbox runs one pause process, so it is a tiny C program rather than a Python one. The
binary lives in the home under `bin/pause-<hash of the source>`: a changed pause.c builds a new
one, an unchanged one is reused across daemon restarts. It is linked statically when the C
library's static archive is installed (smaller resident memory, no loader), dynamically otherwise.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pause.c")


def static_libc_available(compiler: str = "cc") -> bool:
    """True when the compiler can find libc.a (Debian: the libc6-dev package)."""
    try:
        found = subprocess.run([compiler, "-print-file-name=libc.a"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return False
    return os.path.isabs(found.stdout.strip())


def binary_path(home: str, source: bytes, name: str = "pause") -> str:
    digest = hashlib.sha256(source).hexdigest()[:16]
    return os.path.join(home, "bin", f"{name}-{digest}")


def ensure_pause_binary(home: str, compiler: str = "cc") -> str:
    """Path of the pause binary for the current pause.c, compiling it if this home lacks it."""
    return ensure_binary(home, SOURCE, "pause", compiler)


def ensure_binary(home: str, source_path: str, name: str, compiler: str = "cc") -> str:
    """Path of `home/bin/<name>-<hash>` built from the C file at source_path (pause, the container monitor)."""
    with open(source_path, "rb") as file:
        source = file.read()
    target = binary_path(home, source, name)
    if os.access(target, os.X_OK):
        return target
    os.makedirs(os.path.dirname(target), exist_ok=True)
    flags = ["-Os", "-s", "-Wall", "-Werror"] + (["-static"] if static_libc_available(compiler) else [])
    # Compile to a temporary name and rename: a concurrent start never sees half a binary.
    descriptor, partial = tempfile.mkstemp(prefix=f".{name}-", dir=os.path.dirname(target))
    os.close(descriptor)
    try:
        built = subprocess.run([compiler, *flags, "-o", partial, source_path], capture_output=True, text=True)
        if built.returncode != 0:
            raise RuntimeError(
                f"building the {name} binary from {source_path} with {compiler} failed: {built.stderr.strip()}; "
                "install a C compiler (Debian: apt-get install gcc libc6-dev)"
            )
        os.chmod(partial, 0o755)
        os.rename(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return target
