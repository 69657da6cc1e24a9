"""Waypoint experts for the ALOHA tasks, in end-effector space (pure numpy; no simulator import).

gym-aloha ships no scripted policy. These follow the design of the ACT authors' scripted policies: each arm
visits timed waypoints (gripper position, orientation and opening), linearly interpolated in position and
opening and spherically in orientation, and the result drives gym-aloha's mocap end-effector environment.

Action layout (16-D, what gym-aloha's end-effector task reads): per arm, left then right,
``[x, y, z, qw, qx, qy, qz, gripper]`` with the mocap pose in the world frame (metres) and the gripper
normalised 0 = closed, 1 = open.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

EPISODE_STEPS = 400  # gym-aloha episodes: 400 steps at 50 Hz (8 s)
IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])
INSERTION_DEPTH = 0.05


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of (w, x, y, z) quaternions."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ]
    )


def quat_from_axis_angle(axis: Sequence[float], degrees: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    half = np.radians(degrees) / 2
    return np.concatenate([[np.cos(half)], np.sin(half) * axis])


def quat_slerp(a: np.ndarray, b: np.ndarray, fraction: float) -> np.ndarray:
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    dot = float(np.dot(a, b))
    if dot < 0:  # the shorter way round
        b, dot = -b, -dot
    if dot > 0.9995:
        q = a + fraction * (b - a)
        return q / np.linalg.norm(q)
    theta = np.arccos(dot)
    return (np.sin((1 - fraction) * theta) * a + np.sin(fraction * theta) * b) / np.sin(theta)


@dataclass(frozen=True)
class Waypoint:
    t: int  # control step at which the gripper is here
    xyz: np.ndarray  # mocap position, world frame, metres
    quat: np.ndarray  # mocap orientation (w, x, y, z)
    gripper: float  # 0 = closed, 1 = open


class WaypointPolicy:
    """Both arms' waypoint lists; ``action(t)`` is the 16-D end-effector command at control step t."""

    def __init__(self, left: Sequence[Waypoint], right: Sequence[Waypoint]):
        for arm in (left, right):
            times = [w.t for w in arm]
            if times[0] != 0 or any(b <= a for a, b in itertools.pairwise(times)):
                raise ValueError(f"waypoint times must start at 0 and increase, got {times}")
        self.left = tuple(left)
        self.right = tuple(right)

    def action(self, t: int) -> np.ndarray:
        return np.concatenate([_interpolate(self.left, t), _interpolate(self.right, t)])


def _interpolate(waypoints: Sequence[Waypoint], t: int) -> np.ndarray:
    if t >= waypoints[-1].t:
        last = waypoints[-1]
        return np.concatenate([last.xyz, last.quat, [last.gripper]])
    after = next(i for i, w in enumerate(waypoints) if w.t > t)
    start, end = waypoints[after - 1], waypoints[after]
    fraction = (t - start.t) / (end.t - start.t)
    xyz = start.xyz + fraction * (end.xyz - start.xyz)
    quat = quat_slerp(start.quat, end.quat, fraction)
    gripper = start.gripper + fraction * (end.gripper - start.gripper)
    return np.concatenate([xyz, quat, [gripper]])


def _waypoint(
    t: int, xyz: Sequence[float], quat: np.ndarray, gripper: float, offset: Sequence[float] = (0, 0, 0)
) -> Waypoint:
    """A waypoint at ``xyz + offset`` (metres)."""
    position = np.asarray(xyz, dtype=float) + np.asarray(offset, dtype=float)
    return Waypoint(t, position, np.asarray(quat, dtype=float), float(gripper))


def transfer_cube_policy(left_start: np.ndarray, right_start: np.ndarray, cube_xyz: np.ndarray) -> WaypointPolicy:
    """Right arm picks the cube from the table and holds it up at the meeting point; the left arm takes it
    there, the right releases and backs away. ``*_start`` are the 7-D initial mocap poses."""
    pick = quat_multiply(right_start[3:], quat_from_axis_angle([0, 1, 0], -60))  # tilted down to the table
    meet_left = quat_from_axis_angle([1, 0, 0], 90)  # left gripper turned to grasp across the right one
    meet = np.array([0.0, 0.5, 0.25])
    cube = np.asarray(cube_xyz, dtype=float)
    left = [
        _waypoint(0, left_start[:3], left_start[3:], 0),
        _waypoint(100, meet, meet_left, 1, (-0.1, 0, -0.02)),  # approach the meeting point, open
        _waypoint(260, meet, meet_left, 1, (0.02, 0, -0.02)),  # reach around the cube
        _waypoint(310, meet, meet_left, 0, (0.02, 0, -0.02)),  # close on it
        _waypoint(360, meet, IDENTITY, 0, (-0.1, 0, -0.02)),  # pull it away
        _waypoint(EPISODE_STEPS, meet, IDENTITY, 0, (-0.1, 0, -0.02)),  # hold
    ]
    right = [
        _waypoint(0, right_start[:3], right_start[3:], 0),
        _waypoint(90, cube, pick, 1, (0, 0, 0.08)),  # above the cube, open
        _waypoint(130, cube, pick, 1, (0, 0, -0.015)),  # down around it
        _waypoint(170, cube, pick, 0, (0, 0, -0.015)),  # close
        _waypoint(200, meet, pick, 0, (0.05, 0, 0)),  # lift towards the meeting point
        _waypoint(220, meet, pick, 0),
        _waypoint(310, meet, pick, 1),  # let go once the left gripper holds it
        _waypoint(360, meet, pick, 1, (0.1, 0, 0)),  # back away
        _waypoint(EPISODE_STEPS, meet, pick, 1, (0.1, 0, 0)),
    ]
    return WaypointPolicy(left, right)


def insertion_policy(
    left_start: np.ndarray, right_start: np.ndarray, peg_xyz: np.ndarray, socket_xyz: np.ndarray
) -> WaypointPolicy:
    """Left arm picks up the socket, right arm the peg; both lift them to a meeting point above the table and
    push the peg into the socket until it touches the pin."""
    pick_right = quat_multiply(right_start[3:], quat_from_axis_angle([0, 1, 0], -60))
    pick_left = quat_multiply(right_start[3:], quat_from_axis_angle([0, 1, 0], 60))
    meet = np.array([0.0, 0.5, 0.15])
    lift_right = 0.00715  # the peg sits this much lower in the right gripper than the socket's hole in the left
    inserted = INSERTION_DEPTH  # each gripper's distance from the meeting point once the peg is in
    peg = np.asarray(peg_xyz, dtype=float)
    socket = np.asarray(socket_xyz, dtype=float)
    left = [
        _waypoint(0, left_start[:3], left_start[3:], 0),
        _waypoint(120, socket, pick_left, 1, (0, 0, 0.08)),  # above the socket, open
        _waypoint(170, socket, pick_left, 1, (0, 0, -0.03)),  # down around it
        _waypoint(220, socket, pick_left, 0, (0, 0, -0.03)),  # close
        _waypoint(285, meet, pick_left, 0, (-0.1, 0, 0)),  # lift to the meeting point
        _waypoint(340, meet, pick_left, 0, (-inserted, 0, 0)),  # insert
        _waypoint(EPISODE_STEPS, meet, pick_left, 0, (-inserted, 0, 0)),
    ]
    right = [
        _waypoint(0, right_start[:3], right_start[3:], 0),
        _waypoint(120, peg, pick_right, 1, (0, 0, 0.08)),
        _waypoint(170, peg, pick_right, 1, (0, 0, -0.03)),
        _waypoint(220, peg, pick_right, 0, (0, 0, -0.03)),
        _waypoint(285, meet, pick_right, 0, (0.1, 0, lift_right)),
        _waypoint(340, meet, pick_right, 0, (inserted, 0, lift_right)),
        _waypoint(EPISODE_STEPS, meet, pick_right, 0, (inserted, 0, lift_right)),
    ]
    return WaypointPolicy(left, right)
