"""The per-pod files under `<home>/pods/<uid>/` that every container of the pod bind-mounts.

Kubelet writes the same set: an `etc-hosts` with the localhost lines plus the pod's own address
and hostname (and `hostAliases`), `hostname`, and a `resolv.conf` by the pod's `dnsPolicy`: the
cluster DNS with the namespace's search path (ClusterFirst), or the host's minus loopback
nameservers (a container's 127.0.0.53 is its own loopback, where nothing answers), then
`dnsConfig`.
emptyDir volumes are directories under `volumes/<name>`; container logs go under `logs/`.
The directory goes away with the pod.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import stat

HOSTNAME_MAX = 63

LOCALHOST_LINES = """# Kubernetes-managed hosts file.
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
fe00::0\tip6-mcastprefix
fe00::1\tip6-allnodes
fe00::2\tip6-allrouters
"""


def pods_dir(home: str) -> str:
    return os.path.join(home, "pods")


def pod_dir(home: str, pod_uid: str) -> str:
    return os.path.join(pods_dir(home), pod_uid)


def pod_hostname(pod) -> str:
    """spec.hostname, else the pod name cut to 63 characters without a trailing '-' or '.', as kubelet does."""
    if pod.spec.hostname:
        return pod.spec.hostname
    return pod.metadata.name[:HOSTNAME_MAX].rstrip("-.")


def hosts_file(pod_ip: str, hostname: str, host_aliases=(), domain: str | None = None) -> str:
    """kubelet's managed /etc/hosts; with a `domain` (a pod's `<subdomain>.<namespace>.svc.cluster.local`)
    the pod's line names its fully qualified name first: `10.244.0.5  web-0.nginx.default.svc.cluster.local  web-0`."""
    own = f"{pod_ip}\t{hostname}.{domain}\t{hostname}\n" if domain else f"{pod_ip}\t{hostname}\n"
    lines = [LOCALHOST_LINES, own]
    if host_aliases:
        lines.append("\n# Entries added by HostAliases.\n")
        lines.extend(f"{alias.ip}\t{chr(9).join(alias.hostnames or [])}\n" for alias in host_aliases)
    return "".join(lines)


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def resolv_conf(host_resolv_conf: str = "/etc/resolv.conf") -> str:
    try:
        with open(host_resolv_conf) as file:
            lines = file.read().splitlines()
    except FileNotFoundError:
        return ""
    kept = []
    for line in lines:
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver" and _is_loopback(words[1]):
            continue
        kept.append(line)
    return "\n".join(kept) + "\n"


def pod_resolv_conf(pod, host_text: str, cluster_dns: str | None, cluster_domain: str = "cluster.local") -> str:
    """kubelet's resolv.conf for a pod: by `dnsPolicy` (ClusterFirst: the cluster DNS, the
    namespace's search path and ndots:5; Default: the host's; None: nothing), then `dnsConfig`
    appended (name servers up to three, new search domains, options replacing by name). Without a
    cluster DNS, ClusterFirst falls back to Default, as kubelet does without --cluster-dns."""
    host_lines = host_text.splitlines()
    host_servers = [line.split()[1] for line in host_lines if line.split()[:1] == ["nameserver"] and len(line.split()) > 1]
    host_searches = [word for line in host_lines if line.split()[:1] in (["search"], ["domain"]) for word in line.split()[1:]]
    host_options = [word for line in host_lines if line.split()[:1] == ["options"] for word in line.split()[1:]]
    policy = pod.spec.dns_policy
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet") and cluster_dns:
        namespace = pod.metadata.namespace
        servers = [cluster_dns]
        searches = [f"{namespace}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain, *host_searches]
        options = ["ndots:5"]
    elif policy == "None":
        servers, searches, options = [], [], []
    else:
        servers, searches, options = host_servers, host_searches, host_options
    config = pod.spec.dns_config
    if config is not None:
        servers += [server for server in config.nameservers or [] if server not in servers]
        searches += [search for search in config.searches or [] if search not in searches]
        for option in config.options or []:
            options = [kept for kept in options if kept.split(":", 1)[0] != option.name]
            options.append(f"{option.name}:{option.value}" if option.value is not None else str(option.name))
    lines = [f"nameserver {server}" for server in servers[:3]]
    if searches:
        lines.append("search " + " ".join(dict.fromkeys(searches)))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def _write(path: str, text: str) -> None:
    temporary = path + ".tmp"
    with open(temporary, "w") as file:
        file.write(text)
    os.replace(temporary, path)


def write_pod_files(home: str, pod, pod_ip: str, host_resolv_conf: str = "/etc/resolv.conf",
                    cluster_dns: str | None = None) -> str:
    """Create the pod's directory with its files and volume directories; returns the directory."""
    directory = pod_dir(home, pod.metadata.uid)
    os.makedirs(os.path.join(directory, "logs"), exist_ok=True)
    hostname = pod_hostname(pod)
    subdomain = getattr(pod.spec, "subdomain", None)
    domain = f"{subdomain}.{pod.metadata.namespace}.svc.cluster.local" if subdomain else None
    _write(os.path.join(directory, "etc-hosts"),
           hosts_file(pod_ip, hostname, getattr(pod.spec, "host_aliases", None), domain))
    _write(os.path.join(directory, "hostname"), hostname + "\n")
    _write(os.path.join(directory, "resolv.conf"), pod_resolv_conf(pod, resolv_conf(host_resolv_conf), cluster_dns))
    for volume in pod.spec.volumes or []:
        if getattr(volume, "empty_dir", None) is not None:
            volume_dir = os.path.join(directory, "volumes", volume.name)
            os.makedirs(volume_dir, exist_ok=True)
            os.chmod(volume_dir, 0o777)  # as kubelet makes an emptyDir: any container user may write
            fs_group = getattr(getattr(pod.spec, "security_context", None), "fs_group", None)
            if fs_group is not None:
                set_volume_ownership(volume_dir, fs_group)
        host_path = getattr(volume, "host_path", None)
        if host_path is not None and getattr(host_path, "type", None) == "DirectoryOrCreate":
            os.makedirs(host_path.path, exist_ok=True)
    for container in pod.spec.containers:
        os.makedirs(os.path.join(directory, "logs", container.name), exist_ok=True)
    return directory


def seccomp_profiles_dir(home: str) -> str:
    """Where `Localhost` seccomp profiles live, as kubelet's <root-dir>/seccomp."""
    return os.path.join(home, "seccomp")


def set_volume_ownership(path: str, fs_group: int, read_only: bool = False) -> None:
    """kubelet's SetVolumeOwnership: everything in the volume belongs to the fsGroup, read-write
    for the group (read-only for the API data volumes: configMap, secret, downwardAPI, projected),
    directories searchable and setgid so new files inherit the group."""
    for current, directories, files in os.walk(path):
        links = [name for name in directories if os.path.islink(os.path.join(current, name))]  # not walked into
        for target in [current, *(os.path.join(current, name) for name in files + links)]:
            info = os.lstat(target)
            os.lchown(target, -1, fs_group)
            if stat.S_ISLNK(info.st_mode):
                continue
            mask = (0o440 if read_only else 0o660) | (0o110 | stat.S_ISGID if stat.S_ISDIR(info.st_mode) else 0)
            os.chmod(target, stat.S_IMODE(info.st_mode) | mask)


def pod_uids(home: str) -> list[str]:
    """The pods that have a directory here (running, stopped with the cluster, or left over)."""
    try:
        return os.listdir(pods_dir(home))
    except FileNotFoundError:
        return []


def remove_pod_files(home: str, pod_uid: str) -> None:
    shutil.rmtree(pod_dir(home, pod_uid), ignore_errors=True)
