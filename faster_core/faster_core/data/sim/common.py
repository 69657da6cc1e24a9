"""What every simulator generator shares: camera rendering, the record-only-successes loop and its report."""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import mujoco
import numpy as np
from tqdm import tqdm

from faster_core.data.episodes import DatasetWriter


@dataclass(frozen=True)
class Marker:
    """A visual-only flat disc drawn into every frame: a goal pad the scene's model does not contain."""

    position: np.ndarray  # [3] world coordinates of the disc's centre
    radius: float  # metres
    rgba: tuple[float, float, float, float]


@dataclass(frozen=True)
class MountedCamera:
    """A camera fixed to a moving body that the scene's model does not contain, such as a wrist camera.

    Poses are in the body's frame; the frame's "up" is ``up`` made orthogonal to the line of sight.
    """

    body: str  # the MJCF body it is screwed to
    position: tuple[float, float, float]  # metres, body frame
    target: tuple[float, float, float]  # the point the optical axis passes through, metres, body frame
    up: tuple[float, float, float]  # the direction that is up in the image, body frame
    fovy_deg: float  # vertical field of view


@dataclass(frozen=True)
class Rollout:
    """One scripted episode as run, recorded before we know whether it succeeded."""

    state: np.ndarray  # [T, D] joint positions before each step
    action: np.ndarray  # [T, D] joint targets commanded at each step
    frames: dict[str, list[np.ndarray]]
    success: bool


class ScriptedTask(Protocol):
    """A simulator task with its scripted expert; one instance keeps one environment (and GL context) alive."""

    name: str
    instruction: str

    def rollout(self, rng: np.random.Generator) -> Rollout: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class TaskReport:
    task: str
    recorded: int
    attempts: int
    seconds: float

    @property
    def success_rate(self) -> float:
        return self.recorded / self.attempts if self.attempts else 0.0

    @property
    def seconds_per_episode(self) -> float:
        """Wall time per attempted episode: simulation, expert, rendering and writing."""
        return self.seconds / self.attempts if self.attempts else 0.0


@dataclass(frozen=True)
class GenerationReport:
    env_name: str
    out_dir: str
    tasks: tuple[TaskReport, ...]

    @property
    def recorded(self) -> int:
        return sum(t.recorded for t in self.tasks)

    @property
    def attempts(self) -> int:
        return sum(t.attempts for t in self.tasks)

    @property
    def success_rate(self) -> float:
        return self.recorded / self.attempts if self.attempts else 0.0

    @property
    def seconds_per_episode(self) -> float:
        return sum(t.seconds for t in self.tasks) / self.attempts if self.attempts else 0.0

    def summary(self) -> str:
        lines = [
            f"{t.task:<28} {t.recorded:>4}/{t.attempts:<4} successful  {t.success_rate:6.1%}  "
            f"{t.seconds_per_episode:6.3f} s/episode"
            for t in self.tasks
        ]
        lines.append(
            f"{self.env_name}: {self.recorded} episodes written to {self.out_dir} from {self.attempts} attempts "
            f"(success rate {self.success_rate:.1%}, {self.seconds_per_episode:.3f} s/episode)"
        )
        return "\n".join(lines)


def collect(
    writer: DatasetWriter,
    task: ScriptedTask,
    *,
    episodes: int,
    max_attempts: int,
    rng: np.random.Generator,
    progress: bool,
) -> TaskReport:
    """Run the expert until ``episodes`` successes (or ``max_attempts`` tries); only successes are written."""
    start = time.perf_counter()
    attempts = recorded = 0
    with tqdm(total=episodes, desc=task.name, unit="episode", disable=not progress, leave=False) as bar:
        while recorded < episodes and attempts < max_attempts:
            attempts += 1
            rollout = task.rollout(rng)
            if rollout.success:
                writer.add_episode(
                    timestamps=np.arange(len(rollout.state)) / writer.fps,
                    state=rollout.state,
                    action=rollout.action,
                    frames=rollout.frames,
                    instruction=task.instruction,
                    success=True,
                )
                recorded += 1
                bar.update()
            bar.set_postfix(success=f"{recorded}/{attempts}")
    return TaskReport(task.name, recorded, attempts, time.perf_counter() - start)


class CameraRig:
    """Offscreen renders of named MJCF cameras and of ``mounted`` ones at one square size, shadows and reflections
    off for speed.

    A camera whose image "up" axis points below the horizon (Meta-World's corner cameras are mounted rolled by
    180 degrees) is turned upright by rotating its frames 180 degrees, which keeps them a real camera's view
    (a vertical flip alone would mirror the scene). The decision is made once, from the pose at construction,
    so a moving camera never flips mid-episode.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        data: mujoco.MjData,
        cameras: Sequence[str],
        size: int,
        *,
        mesh_cell_m: float = 0.0,  # draw meshes merged on a grid of this many metres (coarsened_meshes); 0: as they are
        mounted: Mapping[str, MountedCamera] | None = None,  # cameras the model lacks, by name; None: none
    ):
        self._mounted = dict(mounted or {})
        available = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(model.ncam)]
        unknown = [c for c in cameras if c not in available and c not in self._mounted]
        if unknown:
            raise ValueError(f"unknown cameras {unknown}; this scene has {available + sorted(self._mounted)}")
        for name, mount in self._mounted.items():
            if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, mount.body) < 0:
                raise ValueError(f"camera {name!r} is mounted on body {mount.body!r}, which this scene lacks")
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, size)
        model.vis.global_.offheight = max(model.vis.global_.offheight, size)
        mujoco.mj_forward(model, data)
        self.cameras = tuple(cameras)
        self._upside_down = {c for c in cameras if c not in self._mounted and data.cam(c).xmat.reshape(3, 3)[2, 1] < 0}
        self._renderer = mujoco.Renderer(coarsened_meshes(model, mesh_cell_m) if mesh_cell_m else model, size, size)
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0

    @property
    def upside_down(self) -> frozenset[str]:
        return frozenset(self._upside_down)

    def capture(self, data: mujoco.MjData, markers: Sequence[Marker] = ()) -> dict[str, np.ndarray]:
        frames = {}
        for camera in self.cameras:
            if camera in self._mounted:
                self._update_mounted(data, self._mounted[camera])
            else:
                self._renderer.update_scene(data, camera=camera)
            for marker in markers:
                self._draw(marker)
            image = self._renderer.render()
            frames[camera] = np.ascontiguousarray(image[::-1, ::-1] if camera in self._upside_down else image)
        return frames

    def _update_mounted(self, data: mujoco.MjData, mount: MountedCamera) -> None:
        """The scene as a free camera sees it, then both eyes (and the headlight, which shines from the viewer) moved
        to the mount's pose and field of view."""
        self._renderer.update_scene(data, camera=mujoco.MjvCamera())
        body = data.body(mount.body)
        rotation = body.xmat.reshape(3, 3)
        position = body.xpos + rotation @ np.asarray(mount.position)
        forward = body.xpos + rotation @ np.asarray(mount.target) - position
        forward /= np.linalg.norm(forward)
        up = rotation @ np.asarray(mount.up)
        up -= forward * (up @ forward)
        up /= np.linalg.norm(up)
        for eye in self._renderer.scene.camera:
            eye.pos, eye.forward, eye.up = position, forward, up
            half_height = eye.frustum_near * np.tan(np.radians(mount.fovy_deg) / 2)
            eye.frustum_center, eye.frustum_width = 0.0, 0.0  # 0: from the frame's aspect
            eye.frustum_bottom, eye.frustum_top = -half_height, half_height
        scene = self._renderer.scene
        for light in scene.lights[: scene.nlight]:
            if light.headlight:
                light.pos, light.dir = position, forward

    def _draw(self, marker: Marker) -> None:
        scene = self._renderer.scene
        if scene.ngeom >= scene.maxgeom:
            raise RuntimeError(f"the render scene is full ({scene.maxgeom} geoms): cannot draw a marker")
        half_height = 5e-4
        mujoco.mjv_initGeom(
            scene.geoms[scene.ngeom],
            type=mujoco.mjtGeom.mjGEOM_CYLINDER,
            size=np.array([marker.radius, marker.radius, half_height]),
            pos=np.asarray(marker.position, dtype=np.float64),
            mat=np.eye(3).ravel(),
            rgba=np.asarray(marker.rgba, dtype=np.float32),
        )
        scene.ngeom += 1

    def close(self) -> None:
        self._renderer.close()


def coarsened_meshes(model: mujoco.MjModel, cell_m: float) -> mujoco.MjModel:
    """A copy of ``model`` to render from, whose meshes have fewer triangles; physics keeps the original.

    Software rendering (EGL on Mesa's llvmpipe) spends its time on triangles, not pixels: CAD meshes drawn into a 64 px
    frame cost as much as into a 224 px one. Vertex clustering: every mesh vertex is moved to the first vertex of its
    ``cell_m`` grid cell, and faces that collapse or repeat are dropped. The surviving faces keep their vertex indices,
    normals and texture coordinates in place, so each mesh stays in its own frame and ``mjData`` of the original model
    poses it. Only the face arrays the renderer reads are rewritten (as a prefix of each mesh's face block).
    """
    if cell_m <= 0:
        raise ValueError(f"mesh cell must be positive metres, got {cell_m}")
    coarse = copy.deepcopy(model)
    for mesh in range(coarse.nmesh):
        vertices = slice(coarse.mesh_vertadr[mesh], coarse.mesh_vertadr[mesh] + coarse.mesh_vertnum[mesh])
        start, count = coarse.mesh_faceadr[mesh], coarse.mesh_facenum[mesh]
        faces = slice(start, start + count)
        cells = np.floor(coarse.mesh_vert[vertices] / cell_m).astype(np.int64)
        _, first, cell_of = np.unique(cells, axis=0, return_index=True, return_inverse=True)
        merged = first[cell_of.ravel()][coarse.mesh_face[faces]]
        proper = (merged[:, 0] != merged[:, 1]) & (merged[:, 1] != merged[:, 2]) & (merged[:, 0] != merged[:, 2])
        _, unique = np.unique(np.sort(merged[proper], axis=1), axis=0, return_index=True)
        kept = np.flatnonzero(proper)[np.sort(unique)]
        coarse.mesh_face[start : start + kept.size] = merged[kept]
        for per_corner in (coarse.mesh_facenormal, coarse.mesh_facetexcoord):
            per_corner[start : start + kept.size] = per_corner[faces][kept]
        coarse.mesh_facenum[mesh] = kept.size
    return coarse
