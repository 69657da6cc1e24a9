"""Shared fixtures. ROS tests get their own DDS domain and loopback-only discovery, never the machine's network."""

from __future__ import annotations

import itertools
import os

import pytest

# Tests render simulators off-screen (no display here or in CI), before any test module imports mujoco.
os.environ.setdefault("MUJOCO_GL", "egl")

_domain_ids = itertools.count()


def _next_domain_id() -> int:
    # Valid Fast DDS domains on Linux are 0..232; spread by pid so concurrent pytest runs do not share a domain.
    return 1 + (os.getpid() * 13 + next(_domain_ids)) % 200


@pytest.fixture
def ros_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for this test and the processes it starts: a fresh ROS_DOMAIN_ID, discovery on loopback only."""
    domain = str(_next_domain_id())
    monkeypatch.setenv("ROS_DOMAIN_ID", domain)
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.delenv("ROS_STATIC_PEERS", raising=False)
    return dict(os.environ)


@pytest.fixture
def rclpy_context(ros_env: dict[str, str]):
    """An initialised rclpy context on the test's own domain, shut down afterwards."""
    rclpy = pytest.importorskip("rclpy")
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    try:
        yield context
    finally:
        context.try_shutdown()
