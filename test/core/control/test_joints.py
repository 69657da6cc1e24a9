import numpy as np
import pytest

from faster_core.control import JointStateCache


def test_split_messages_merge_in_configured_order():
    cache = JointStateCache(["a1", "a2", "gripper"])
    assert cache.update(["gripper", "finger_mimic"], [0.04, 0.04], received_at=1.0) == 1
    with pytest.raises(ValueError, match=r"no joint state yet for \['a1', 'a2'\]; .*finger_mimic"):
        cache.positions(now=1.0, max_age=0.5)
    cache.update(["a2", "a1"], [0.2, 0.1], received_at=1.1)
    np.testing.assert_array_equal(cache.positions(now=1.2, max_age=0.5), [0.1, 0.2, 0.04])


def test_stale_joints_are_named():
    cache = JointStateCache(["a1", "gripper"])
    cache.update(["a1", "gripper"], [0.0, 0.0], received_at=0.0)
    cache.update(["a1"], [0.1], received_at=1.0)
    with pytest.raises(ValueError, match=r"stale for \['gripper'\] \(oldest 1.000 s"):
        cache.positions(now=1.0, max_age=0.2)


@pytest.mark.parametrize(
    ("names", "positions", "message"),
    [
        (["a1", "gripper"], [np.nan, 0.0], r"NaN/inf positions for \['a1'\]"),
        (["a1"], [0.0, 1.0], "1 names but 2 positions"),
        (["a1", "a1"], [0.0, 1.0], "repeats"),
    ],
)
def test_bad_messages_are_refused_whole(names, positions, message):
    cache = JointStateCache(["a1", "gripper"])
    cache.update(["a1", "gripper"], [0.5, 0.5], received_at=0.0)
    with pytest.raises(ValueError, match=message):
        cache.update(names, positions, received_at=0.1)
    np.testing.assert_array_equal(cache.positions(now=0.1, max_age=1.0), [0.5, 0.5])
