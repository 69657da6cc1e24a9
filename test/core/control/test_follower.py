import numpy as np
import pytest

from faster_core.control import TrajectoryFollower


def test_interpolates_from_the_command_at_arrival_and_holds_the_last_point():
    follower = TrajectoryFollower(np.zeros(2))
    follower.accept(np.array([0.1, 0.3]), np.array([[1.0, 2.0], [3.0, 2.0]]), received_at=10.0)
    np.testing.assert_allclose(follower.target(10.0), [0.0, 0.0])
    np.testing.assert_allclose(follower.target(10.05), [0.5, 1.0])
    np.testing.assert_allclose(follower.target(10.2), [2.0, 2.0])
    np.testing.assert_allclose(follower.target(99.0), [3.0, 2.0])


def test_a_new_trajectory_replaces_the_old_without_a_jump():
    follower = TrajectoryFollower(np.zeros(1))
    follower.accept(np.array([1.0]), np.array([[10.0]]), received_at=0.0)
    follower.accept(np.array([1.0]), np.array([[0.0]]), received_at=0.5)  # commanded 5.0 at that moment
    np.testing.assert_allclose(follower.target(0.5), [5.0])
    np.testing.assert_allclose(follower.target(1.0), [2.5])


def test_empty_trajectory_stops_where_the_command_is():
    follower = TrajectoryFollower(np.zeros(1))
    follower.accept(np.array([1.0]), np.array([[10.0]]), received_at=0.0)
    follower.accept(np.array([]), np.zeros((0, 1)), received_at=0.3)
    np.testing.assert_allclose(follower.target(5.0), [3.0])


@pytest.mark.parametrize(
    ("times", "positions", "message"),
    [
        ([0.2, 0.1], [[0.0], [0.0]], "strictly increasing"),
        ([0.1], [[np.nan]], "NaN"),
        ([0.1], [[0.0, 1.0]], r"expected \[1, 1\]"),
    ],
)
def test_malformed_trajectories_are_refused_and_the_old_one_kept(times, positions, message):
    follower = TrajectoryFollower(np.zeros(1))
    follower.accept(np.array([1.0]), np.array([[1.0]]), received_at=0.0)
    with pytest.raises(ValueError, match=message):
        follower.accept(np.array(times), np.array(positions), received_at=0.5)
    np.testing.assert_allclose(follower.target(1.0), [1.0])
