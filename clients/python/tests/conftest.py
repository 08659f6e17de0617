"""Shared fixtures. The live tests need the three services running on Redis; they are
started by test/python-client.test.ts (`npm test`), which passes REDIS_URL and
QT_STREAM_PREFIX (read by Bus() itself, as the services read them)."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest

# Run from a checkout without installing: the package is one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from quantum_trader import Bus  # noqa: E402


def live_loop() -> bool:
    return "QT_STREAM_PREFIX" in os.environ


needs_loop = pytest.mark.skipif(
    not live_loop(), reason="needs the services on Redis: run through `npm test` (test/python-client.test.ts)"
)


@pytest.fixture
def bus() -> Iterator[Bus]:
    with Bus() as bus:
        yield bus


@pytest.fixture
def unique() -> str:
    """A name no other test uses (consumer groups, signal ids)."""
    return uuid.uuid4().hex[:10]
