"""Worker "hosts" on one machine: each a network namespace joined to this host by a veth pair.

A process started in a host's namespace (`Stack.start_worker(..., netns=host.netns)`) has a loopback
of its own and reaches the stack only at the host end of its veth pair, as a worker on another
machine reaches it over the network. The fault tests kill such hosts; the `scale` benchmark adds
them one by one. Making them needs root (`ip netns add`, veth pairs): `isolated_hosts` raises
`HostsUnavailable`, saying which step was refused, where that is not allowed.
"""

from __future__ import annotations

import ipaddress
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from infra.stack import Stack


class HostsUnavailable(RuntimeError):
    """Network namespaces or veth pairs cannot be made on this machine."""


@dataclass
class Host:
    """A network namespace and the veth pair that joins it to this host (a /30 of its own)."""

    name: str
    netns: str
    veth: str  # this host's end; the namespace's end is `veth` + "n" inside it
    host_ip: str
    ns_ip: str
    network: str

    def worker_env(self, stack: Stack) -> dict[str, str]:
        """What a worker in this host's namespace needs: the services at this host's end of the veth
        pair, and a work folder (inside the namespace the stack's folder is an empty tmpfs)."""
        return {**stack.service_env(self.host_ip), "CHUTE_WORK_DIR": str(stack.root / self.name / "work")}


def listen_options(hosts: Sequence[Host]) -> dict[str, tuple[str, ...]]:
    """`Stack` options that let the hosts in: the services listen on their host ends, Postgres trusts
    their networks (the S3 endpoint listens on the first host's address)."""
    return {
        "listen_hosts": tuple(h.host_ip for h in hosts),
        "client_networks": tuple(h.network for h in hosts),
    }


def ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


def free_subnet() -> ipaddress.IPv4Network:
    """A 10.213.x.0/24 that no address or route on this host touches; each host takes a /30 of it."""
    used = ip("-4", "addr").stdout + ip("-4", "route").stdout
    start = uuid.uuid4().int % 256  # a random place to start, so parallel runs rarely collide
    for x in ((start + step) % 256 for step in range(256)):
        if f"10.213.{x}." not in used:
            return ipaddress.IPv4Network(f"10.213.{x}.0/24")
    raise HostsUnavailable("no free 10.213.x.0/24 subnet on this host")


@contextmanager
def isolated_hosts(count: int) -> Iterator[list[Host]]:
    """`count` hosts (at most 64), removed with their veth pairs whatever happens."""
    token = uuid.uuid4().hex[:5]
    subnet = free_subnet()
    made: list[Host] = []
    try:
        for index, network in enumerate(list(subnet.subnets(new_prefix=30))[:count]):
            host_ip, ns_ip = (str(a) for a in list(network.hosts())[:2])
            host = Host(
                f"host-{index}", f"chute-{token}-{index}", f"ch{token}{index}", host_ip, ns_ip, str(network)
            )
            created = ip("netns", "add", host.netns)
            if created.returncode != 0:
                raise HostsUnavailable(
                    f"network namespaces cannot be created here (`ip netns add`: {created.stderr.strip()})"
                )
            made.append(host)
            steps = [
                ["link", "add", host.veth, "type", "veth", "peer", "name", host.veth + "n"],
                ["link", "set", host.veth + "n", "netns", host.netns],
                ["addr", "add", f"{host_ip}/30", "dev", host.veth],
                ["link", "set", host.veth, "up"],
                ["netns", "exec", host.netns, "ip", "addr", "add", f"{ns_ip}/30", "dev", host.veth + "n"],
                ["netns", "exec", host.netns, "ip", "link", "set", host.veth + "n", "up"],
                ["netns", "exec", host.netns, "ip", "link", "set", "lo", "up"],
            ]
            if index > 0:  # the S3 endpoint listens on the first host's address: one route to it, no more
                first = made[0].host_ip
                steps.append(
                    ["netns", "exec", host.netns, "ip", "route", "add", f"{first}/32", "via", host_ip]
                )
            for step in steps:
                done = ip(*step)
                if done.returncode != 0:
                    raise HostsUnavailable(
                        f"veth pairs cannot be set up here (`ip {' '.join(step)}`: {done.stderr.strip()})"
                    )
        yield made
    finally:
        for host in made:
            ip("link", "del", host.veth)
            ip("netns", "del", host.netns)
