import numpy as np
import pytest

from faster_core.control import CommandLimiter
from faster_core.embodiment import JointLimits

LIMITS = JointLimits(
    position_lower=np.array([-1.0, 0.0]), position_upper=np.array([1.0, 0.08]), velocity=np.array([2.0, 0.1])
)


def test_positions_inside_limits_pass_unchanged_with_consistent_velocities():
    limiter = CommandLimiter(LIMITS)
    times = np.array([0.1, 0.2, 0.3])
    positions = np.array([[0.1, 0.01], [0.2, 0.02], [0.3, 0.03]])
    points = limiter.apply(times, positions, current=np.array([0.0, 0.0]))
    assert not points.clipped
    np.testing.assert_array_equal(points.positions, positions)
    np.testing.assert_allclose(points.velocities[:-1], [[1.0, 0.1], [1.0, 0.1]])
    np.testing.assert_array_equal(points.velocities[-1], 0.0)  # the trajectory comes to rest at its last point


def test_range_and_velocity_limits_clip():
    limiter = CommandLimiter(LIMITS, velocity_scale=0.5)
    times = np.array([0.1, 0.2])
    positions = np.array([[5.0, 0.5], [-5.0, 0.5]])
    points = limiter.apply(times, positions, current=np.array([0.0, 0.0]))
    assert points.clipped
    # joint 0 may move 1.0 rad/s * 0.1 s per step; joint 1 0.05 m/s * 0.1 s
    np.testing.assert_allclose(points.positions, [[0.1, 0.005], [0.0, 0.01]])
    assert np.all(np.abs(points.velocities) <= limiter.max_velocity + 1e-12)


def test_a_joint_outside_its_range_returns_at_its_velocity_limit():
    limiter = CommandLimiter(LIMITS)
    points = limiter.apply(np.array([0.05, 0.10]), np.array([[0.9, 0.04], [0.9, 0.04]]), current=np.array([3.0, 0.04]))
    np.testing.assert_allclose(points.positions[:, 0], [2.9, 2.8])  # 2 rad/s, never a jump into the range
    assert np.all(np.abs(np.diff(np.concatenate([[3.0], points.positions[:, 0]]))) <= 2.0 * 0.05 + 1e-12)


@pytest.mark.parametrize(
    ("times", "positions", "current", "message"),
    [
        ([0.1], [[np.nan, 0.0]], [0.0, 0.0], "positions hold NaN"),
        ([0.1], [[0.0, 0.0]], [np.inf, 0.0], "current joint positions hold NaN"),
        ([0.1], [[0.0, 0.0, 0.0]], [0.0, 0.0], r"expected positions \[N, 2\]"),
        ([0.2, 0.1], [[0.0, 0.0], [0.0, 0.0]], [0.0, 0.0], "strictly increasing"),
        ([0.1], [[0.0, 0.0]], [0.0], r"current joint positions \[2\]"),
    ],
)
def test_bad_input_is_refused(times, positions, current, message):
    with pytest.raises(ValueError, match=message):
        CommandLimiter(LIMITS).apply(np.array(times), np.array(positions), np.array(current))
