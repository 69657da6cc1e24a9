"""Turning predicted chunks into safe, timed joint commands: latency-aware scheduling and limits."""

from faster_core.control.follower import TrajectoryFollower
from faster_core.control.joints import JointStateCache, MissingJointsError, StaleJointsError
from faster_core.control.limits import CommandLimiter, TrajectoryPoints
from faster_core.control.schedule import ActionSchedule, default_replan_steps

__all__ = [
    "ActionSchedule",
    "CommandLimiter",
    "JointStateCache",
    "MissingJointsError",
    "StaleJointsError",
    "TrajectoryFollower",
    "TrajectoryPoints",
    "default_replan_steps",
]
