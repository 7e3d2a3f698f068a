"""Fault injection: these tests kill and restart services, so each module runs a stack of its own
(own folder, free ports, short lease, reconciler every second) instead of the session `stack`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.stack import Stack
from tests.faults.support import FAULT_SETTINGS, Figures, new_client, running_stack
from tests.helpers import ChuteClient


@pytest.fixture(scope="session")
def figures() -> Iterator[Figures]:
    collected = Figures()
    try:
        yield collected
    finally:
        collected.write()


@pytest.fixture(scope="session")
def fault_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("faults"), FAULT_SETTINGS) as stack:
        yield stack


@pytest.fixture
def chute(fault_stack: Stack) -> Iterator[ChuteClient]:
    with new_client(fault_stack) as client:
        yield client
