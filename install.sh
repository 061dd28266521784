#!/usr/bin/env bash
# Sets up this machine for minikube-py: Debian packages (busybox-static for the busybox image,
# a C compiler and libc for the tiny pause and monitor binaries, libseccomp for containers' seccomp filters,
# libnftables1 for the service proxy; docker-registry, skopeo and apache2-utils (htpasswd) for the image
# tests, which run a real registry on 127.0.0.1 and fill it; etcd-server for the etcd store backend and
# its tests; podman and crun for the benchmarks that compare with podman, in a scratch state of its own), then
# minikube-py itself with its test extras.
# Idempotent and quick when everything is already there. Run as root.
set -euo pipefail
cd "$(dirname "$0")"
packages="busybox-static gcc libc6-dev libseccomp2 libnftables1 docker-registry skopeo apache2-utils etcd-server podman crun"
missing=""
for package in $packages; do
  dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
done
if [ -n "$missing" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  case "$missing" in
    # Debian starts a system etcd on 127.0.0.1:2379 for any local user to read; minikube-py and
    # its tests start their own members (docs/scale-out.md), so the package's service stays off.
    *etcd-server*) if [ -d /run/systemd/system ]; then systemctl disable --now etcd.service >/dev/null 2>&1 || true; fi ;;
  esac
  case "$missing" in
    # The benchmarks run podman in a scratch directory of their own; no podman API socket is wanted.
    *podman*) if [ -d /run/systemd/system ]; then systemctl disable --now podman.socket >/dev/null 2>&1 || true; fi ;;
  esac
fi
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -e '.[test]'
command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
