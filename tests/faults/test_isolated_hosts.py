"""Workers on separate hosts: two workers, each in a network namespace of its own joined to this host by
a veth pair, reaching Postgres, Redis and the S3 endpoint only by address and seeing none of the stack's
files. One is killed mid-run; the other finishes every document."""

from __future__ import annotations

import ipaddress
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.stack import Stack
from tests.faults.documents import text_document
from tests.faults.support import (
    FAULT_SETTINGS,
    Figures,
    duplicate_chunks,
    kill_group,
    new_client,
    query,
    running_stack,
    start_worker,
    wait_final,
)


@dataclass
class Host:
    """A network namespace and the veth pair that joins it to this host (a /30 of its own)."""

    name: str
    netns: str
    veth: str  # this host's end; the namespace's end is `veth` + "n" inside it
    host_ip: str
    ns_ip: str
    network: str


def ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


def free_subnet() -> ipaddress.IPv4Network:
    """A 10.213.x.0/24 that no address or route on this host touches; we use two /30s of it."""
    used = ip("-4", "addr").stdout + ip("-4", "route").stdout
    for x in random.Random(uuid.uuid4().int).sample(range(256), 256):
        if f"10.213.{x}." not in used:
            return ipaddress.IPv4Network(f"10.213.{x}.0/24")
    pytest.skip("no free 10.213.x.0/24 subnet on this host")


@pytest.fixture(scope="module")
def hosts() -> Iterator[list[Host]]:
    token = uuid.uuid4().hex[:5]
    subnet = free_subnet()
    made: list[Host] = []
    try:
        for index, network in enumerate(list(subnet.subnets(new_prefix=30))[:2]):
            host_ip, ns_ip = (str(a) for a in list(network.hosts())[:2])
            host = Host(
                f"host-{index}", f"chute-{token}-{index}", f"ch{token}{index}", host_ip, ns_ip, str(network)
            )
            created = ip("netns", "add", host.netns)
            if created.returncode != 0:
                pytest.skip(
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
                steps.append(
                    [
                        "netns",
                        "exec",
                        host.netns,
                        "ip",
                        "route",
                        "add",
                        f"{made[0].host_ip}/32",
                        "via",
                        host_ip,
                    ]
                )
            for step in steps:
                done = ip(*step)
                if done.returncode != 0:
                    pytest.skip(
                        f"veth pairs cannot be set up here (`ip {' '.join(step)}`: {done.stderr.strip()})"
                    )
        yield made
    finally:
        for host in made:
            ip("link", "del", host.veth)
            ip("netns", "del", host.netns)


def reaches(host: Host, address: str, port: int) -> bool:
    """Whether a TCP connection from inside the host's namespace to address:port succeeds."""
    probe = f"import socket; s = socket.socket(); s.settimeout(2); print(s.connect_ex(({address!r}, {port})))"
    out = subprocess.run(
        ["ip", "netns", "exec", host.netns, sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.strip() == "0"


def claims(stack: Stack, name: str) -> list[tuple[str, str]]:
    """(event, document id) of the ingest events in a worker's log, in order."""
    events = []
    for line in (stack.root / "logs" / f"{name}.log").read_text(errors="replace").splitlines():
        if line.startswith("{") and '"ingest.' in line:
            record = json.loads(line)
            if record.get("event") in ("ingest.claimed", "ingest.indexed"):
                events.append((record["event"], record["document_id"]))
    return events


def remote_addresses(pid: int) -> set[tuple[str, int]]:
    """Remote ends of the established TCP connections in the network namespace of process `pid`."""
    found = set()
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01":  # ESTABLISHED
            address, port = fields[2].split(":")
            found.add((str(ipaddress.IPv4Address(bytes.fromhex(address)[::-1])), int(port, 16)))
    return found


def test_worker_on_another_host_killed_mid_run_the_other_finishes_everything(
    hosts: list[Host], tmp_path_factory: pytest.TempPathFactory, figures: Figures
) -> None:
    rng = random.Random(31)
    root = tmp_path_factory.mktemp("hosts")
    with running_stack(
        root, FAULT_SETTINGS, worker=False,
        listen_hosts=tuple(h.host_ip for h in hosts), client_networks=tuple(h.network for h in hosts),
    ) as stack:  # fmt: skip
        for host in hosts:
            env = {**stack.service_env(host.host_ip), "CHUTE_WORK_DIR": str(stack.root / host.name / "work")}
            start_worker(stack, host.name, env=env, netns=host.netns)

        # Separate hosts: their loopback is not this host's, and the stack's folder is empty to them.
        for host in hosts:
            assert not reaches(host, "127.0.0.1", stack.ports.postgres)
            assert reaches(host, host.host_ip, stack.ports.postgres)
            assert reaches(host, stack.s3_host, stack.ports.s3)
            seen = os.listdir(f"/proc/{stack.processes[host.name].pid}/root{stack.root}")
            assert not {"postgres", "redis", "logs", "work"} & set(seen), seen

        with new_client(stack, "hosts") as client:
            documents = {}
            for index in range(16):
                data = text_document(rng, rng.choice((4, 10, 20)))
                documents[client.upload(f"doc-{index}.txt", data)["document_id"]] = data
            for host in hosts:
                links = remote_addresses(stack.processes[host.name].pid)
                assert (host.host_ip, stack.ports.redis) in links, links
                assert all(address in (host.host_ip, stack.s3_host) for address, _ in links), links

            # Kill host-0 mid-run: it has indexed a document and is processing another.
            victim, survivor = hosts
            deadline = time.monotonic() + 60
            while True:
                events = claims(stack, victim.name)
                done = {d for event, d in events if event == "ingest.indexed"}
                running = [d for event, d in events if event == "ingest.claimed" and d not in done]
                rows = query(
                    stack,
                    "SELECT id::text FROM documents WHERE id = ANY(%s::uuid[]) AND status = 'processing'",
                    running,
                )
                if rows and done and claims(stack, survivor.name):
                    break
                assert time.monotonic() < deadline, "host-0 never took a document while host-1 worked"
                time.sleep(0.02)
            in_flight = rows[0]["id"]
            killed_at = time.time()
            kill_group(stack, victim.name)
            figures.add("kills injected", 1)

            rows_after = wait_final(stack, documents, timeout=90)
        duplicates = duplicate_chunks(stack, documents)

    finished_by_survivor = {d for event, d in claims(stack, survivor.name) if event == "ingest.indexed"}
    lost = [d for d in documents if rows_after[d]["status"] != "indexed"]
    finished_by_victim = {d for event, d in claims(stack, victim.name) if event == "ingest.indexed"}
    recovery = rows_after[in_flight]["indexed_at"].timestamp() - killed_at if not lost else float("nan")
    print(
        f"\n[faults] two namespaced workers ({', '.join(h.netns for h in hosts)}): {victim.name} indexed "
        f"{len(finished_by_victim)}, was killed processing {in_flight}; {survivor.name} indexed "
        f"{len(finished_by_survivor)} of {len(documents)}; the killed one's document indexed "
        f"{recovery:.1f} s after the kill"
    )
    figures.add("documents lost", len(lost))
    figures.add("documents duplicated", len(duplicates))
    if not lost:
        figures.recovery(recovery, "worker host killed (network namespace)")
    assert not lost, {d: rows_after[d] for d in lost}
    assert not duplicates
    assert in_flight in finished_by_survivor
    assert rows_after[in_flight]["attempts"] >= 2
    # Everything not finished by host-0 before it died was finished by host-1.
    assert set(documents) == finished_by_victim | finished_by_survivor
