import numpy as np
import pytest

from faster_core.control import CommandLimiter
from faster_core.embodiment import JointLimits

LIMITS = JointLimits(
    position_lower=np.array([-1.0, 0.0]),
    position_upper=np.array([1.0, 0.08]),
    velocity=np.array([2.0, 0.1]),
    tracking_error=np.array([0.5, 0.02]),
)
PERIOD = 0.05


def test_positions_inside_limits_pass_unchanged_with_consistent_velocities():
    limiter = CommandLimiter(LIMITS, period=PERIOD)
    times = np.array([0.1, 0.2, 0.3])
    positions = np.array([[0.1, 0.01], [0.2, 0.02], [0.3, 0.03]])
    points = limiter.apply(times, positions, measured=np.array([0.0, 0.0]))
    assert not points.clipped
    np.testing.assert_array_equal(points.positions, positions)
    np.testing.assert_allclose(points.velocities[:-1], [[1.0, 0.1], [1.0, 0.1]])
    np.testing.assert_array_equal(points.velocities[-1], 0.0)  # the trajectory comes to rest at its last point


def test_range_and_velocity_limits_clip():
    limiter = CommandLimiter(LIMITS, period=PERIOD, velocity_scale=0.5)
    times = np.array([0.1, 0.2])
    positions = np.array([[5.0, 0.5], [-5.0, 0.5]])
    points = limiter.apply(times, positions, measured=np.array([0.0, 0.0]))
    assert points.clipped
    # joint 0 may move 1.0 rad/s * 0.1 s per step; joint 1 0.05 m/s * 0.1 s
    np.testing.assert_allclose(points.positions, [[0.1, 0.005], [0.0, 0.01]])
    assert np.all(np.abs(points.velocities) <= limiter.max_velocity + 1e-12)


def test_a_joint_outside_its_range_returns_at_its_velocity_limit():
    limiter = CommandLimiter(LIMITS, period=PERIOD)
    points = limiter.apply(np.array([0.05, 0.10]), np.array([[0.9, 0.04], [0.9, 0.04]]), measured=np.array([3.0, 0.04]))
    np.testing.assert_allclose(points.positions[:, 0], [2.9, 2.8])  # 2 rad/s, never a jump into the range
    assert np.all(np.abs(np.diff(np.concatenate([[3.0], points.positions[:, 0]]))) <= 2.0 * 0.05 + 1e-12)


@pytest.mark.parametrize(
    ("times", "positions", "current", "message"),
    [
        ([0.1], [[np.nan, 0.0]], [0.0, 0.0], "positions hold NaN"),
        ([0.1], [[0.0, 0.0]], [np.inf, 0.0], "measured joint positions hold NaN"),
        ([0.1], [[0.0, 0.0, 0.0]], [0.0, 0.0], r"expected positions \[N, 2\]"),
        ([0.2, 0.1], [[0.0, 0.0], [0.0, 0.0]], [0.0, 0.0], "strictly increasing"),
        ([0.1], [[0.0, 0.0]], [0.0], r"measured joint positions \[2\]"),
    ],
)
def test_bad_input_is_refused(times, positions, current, message):
    with pytest.raises(ValueError, match=message):
        CommandLimiter(LIMITS, period=PERIOD).apply(np.array(times), np.array(positions), measured=np.array(current))


def test_a_command_held_past_a_blocked_joint_stays_where_the_controller_has_it():
    # A gripper closed on an object: the controller holds 0.0 while the fingers stand at 0.015. Starting from the
    # measured fingers would loosen the grip to 0.015 - 0.1 m/s x t.
    points = CommandLimiter(LIMITS, period=PERIOD).apply(
        np.array([0.1, 0.2]), np.zeros((2, 2)), measured=np.array([0.0, 0.015]), commanded=np.zeros(2)
    )
    assert not points.clipped
    np.testing.assert_array_equal(points.positions, 0.0)


def test_the_velocity_limit_runs_from_the_command_in_force():
    # The controller is still on its way to 0.5 (joint 0 measured at 0.2): the command moves at most 2 rad/s x 0.1 s
    # from where the controller has it, not from where the joint is.
    points = CommandLimiter(LIMITS, period=PERIOD).apply(
        np.array([0.1]), np.array([[1.0, 0.0]]), measured=np.array([0.2, 0.0]), commanded=np.array([0.5, 0.0])
    )
    np.testing.assert_allclose(points.positions[0], [0.7, 0.0])


def test_a_command_leads_the_measured_joint_by_at_most_its_tracking_error_plus_travel():
    # Joint 0 blocked at 0.0 while the plan asks for -1.0: points may lead it by 0.5 rad + 2 rad/s x t (t at least a
    # period); a command in force further ahead than that comes back at the velocity limit.
    limiter = CommandLimiter(LIMITS, period=PERIOD)
    points = limiter.apply(
        np.array([0.05, 0.1]), np.full((2, 2), [-1.0, 0.0]), measured=np.zeros(2), commanded=np.zeros(2)
    )
    np.testing.assert_allclose(points.positions[:, 0], [-0.1, -0.2])  # the velocity limit binds first
    points = limiter.apply(
        np.array([0.05]), np.array([[-1.0, 0.0]]), measured=np.zeros(2), commanded=np.array([-0.9, 0.0])
    )
    np.testing.assert_allclose(points.positions[0, 0], -0.8)  # back towards the band -0.6 at 2 rad/s
    points = limiter.apply(
        np.array([0.05]), np.array([[-1.0, 0.0]]), measured=np.zeros(2), commanded=np.array([-0.55, 0.0])
    )
    np.testing.assert_allclose(points.positions[0, 0], -0.6)  # 0.5 + 2 x 0.05: the band, within one step's travel
    points = limiter.apply(
        np.array([0.01]), np.array([[-1.0, 0.0]]), measured=np.zeros(2), commanded=np.array([-0.6, 0.0])
    )
    np.testing.assert_allclose(points.positions[0, 0], -0.6)  # a point due sooner than a period keeps a steady lead
