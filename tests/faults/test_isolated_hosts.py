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
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.hosts import Host, HostsUnavailable, isolated_hosts, listen_options
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


@pytest.fixture(scope="module")
def hosts() -> Iterator[list[Host]]:
    try:
        with isolated_hosts(2) as made:
            yield made
    except HostsUnavailable as error:
        pytest.skip(str(error))


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
    with running_stack(root, FAULT_SETTINGS, worker=False, **listen_options(hosts)) as stack:
        for host in hosts:
            start_worker(stack, host.name, env=host.worker_env(stack), netns=host.netns)

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
