"""Observations and action chunks -> model tensors, with the checks a robot-facing policy needs.

The prompt follows pi0-FAST: camera images (in the embodiment's camera order), then the text
``Task: <instruction>, State: <proprioception as 256 bins>;``, then the action tokens. Proprioception is
normalised with q01/q99 (dataset statistics, or the joint limits when there are none), discretised and written
as integers, so the backbone reads it as text (paper §3.2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from faster_core.data.chunks import to_action_mode
from faster_core.embodiment import Embodiment
from faster_core.policy.backbone import TextTokenizer
from faster_core.policy.bar import ActionVocabulary
from faster_core.tokenizer.normalize import normalize


@dataclass(frozen=True)
class Sample:
    images: Mapping[str, np.ndarray]  # camera name -> [H, W, 3] uint8
    state: np.ndarray  # [D] joint positions in joint_names order, robot units
    instruction: str
    actions: np.ndarray | None = None  # [H, D] robot units: training and validation targets


@dataclass
class PolicyBatch:
    pixels: Tensor  # [B, cameras, 3, S, S] normalised for the vision tower
    text_ids: Tensor  # [B, L] prompt tokens, right-padded
    text_mask: Tensor  # [B, L] bool
    action_tokens: Tensor | None = None  # [B, N] expert ids; variable-length chunks padded with -1
    actions: Tensor | None = None  # [B, H, D] robot units, in the tokenizer's action mode (what it tokenized)

    def to(self, device: torch.device | str) -> PolicyBatch:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return PolicyBatch(**{k: v if v is None else v.to(device) for k, v in values.items()})

    def __len__(self) -> int:
        return self.pixels.shape[0]


@dataclass(frozen=True)
class StateNormalizer:
    """Per-joint q01/q99 bounds mapping proprioception to [-1, 1] before binning."""

    q01: tuple[float, ...]
    q99: tuple[float, ...]

    @classmethod
    def from_limits(cls, embodiment: Embodiment) -> StateNormalizer:
        limits = embodiment.limits
        return cls(tuple(limits.position_lower.tolist()), tuple(limits.position_upper.tolist()))

    def bins(self, state: np.ndarray, count: int, *, shift: np.ndarray | None = None) -> np.ndarray:
        normalised = normalize(np.asarray(state, dtype=np.float64), np.asarray(self.q01), np.asarray(self.q99))
        if shift is not None:
            normalised = normalised + shift
        return np.clip(np.floor((normalised + 1) / 2 * count), 0, count - 1).astype(np.int64)


class FASTerProcessor:
    def __init__(
        self,
        *,
        embodiment: Embodiment,
        tokenizer: Any,  # an ActionTokenizer
        vocabulary: ActionVocabulary,
        text_tokenizer: TextTokenizer,
        image_size: int,
        image_mean: Sequence[float],
        image_std: Sequence[float],
        state_normalizer: StateNormalizer,
        state_bins: int = 256,
    ):
        self.embodiment = embodiment
        self.tokenizer = tokenizer
        self.vocabulary = vocabulary
        self.text_tokenizer = text_tokenizer
        self.image_size = image_size
        self.mean = torch.tensor(image_mean, dtype=torch.float32)[:, None, None]
        self.std = torch.tensor(image_std, dtype=torch.float32)[:, None, None]
        self.state_normalizer = state_normalizer
        self.state_bins = state_bins
        if len(state_normalizer.q01) != embodiment.dof:
            raise ValueError(f"state normalisation has {len(state_normalizer.q01)} dimensions, not {embodiment.dof}")

    def prompt(self, state: np.ndarray, instruction: str, *, state_shift: np.ndarray | None = None) -> str:
        """``state_shift`` (normalised units, q01..q99 -> [-1, 1]) moves the state before binning: training noise."""
        bins = self.state_normalizer.bins(state, self.state_bins, shift=state_shift)
        return f"Task: {' '.join(instruction.split())}, State: {' '.join(map(str, bins.tolist()))};"

    def check_observation(
        self, images: Mapping[str, Any], state: Any, instruction: Any
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Clear ValueErrors for anything a robot could send wrong; returns the camera images and the state."""
        if not isinstance(images, Mapping):
            raise ValueError(f"images must map camera names to [H, W, 3] uint8 arrays, got {type(images).__name__}")
        cameras = self.embodiment.camera_names
        missing = [c for c in cameras if c not in images]
        if missing:
            raise ValueError(f"missing camera image(s) {missing}: the policy needs {list(cameras)}")
        checked = {}
        for camera in cameras:
            image = np.asarray(images[camera])
            if image.dtype != np.uint8:
                raise ValueError(f"camera {camera!r}: image must be uint8, got dtype {image.dtype}")
            if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
                raise ValueError(f"camera {camera!r}: image must have shape [H, W, 3] (RGB), got {list(image.shape)}")
            checked[camera] = image
        state = np.asarray(state)
        if not np.issubdtype(state.dtype, np.number) or state.shape != (self.embodiment.dof,):
            raise ValueError(
                f"state must be a numeric array of shape [{self.embodiment.dof}] (joint positions in "
                f"{list(self.embodiment.joint_names)} order), got {state.dtype} {list(state.shape)}"
            )
        bad = np.flatnonzero(~np.isfinite(state))
        if bad.size:
            raise ValueError(f"state has NaN/inf for joints {[self.embodiment.joint_names[i] for i in bad]}")
        if not isinstance(instruction, str) or not instruction.strip():
            raise ValueError(f"instruction must be a non-empty string, got {instruction!r}")
        return checked, state.astype(np.float64)

    def __call__(
        self,
        samples: Sequence[Sample | Mapping[str, Any]],
        *,
        with_actions: bool = False,
        state_noise: float = 0.0,  # std of Gaussian noise on each prompt's normalised state; training only
        generator: np.random.Generator | None = None,  # draws that noise
    ) -> PolicyBatch:
        """Batch samples for the model; with ``state_noise`` the prompts show perturbed joint states (the actions stay
        as demonstrated), so a policy cannot read where the arm is heading from the state alone and must look."""
        samples = [s if isinstance(s, Sample) else Sample(**s) for s in samples]
        if not samples:
            raise ValueError("no samples")
        if not (np.isfinite(state_noise) and state_noise >= 0):
            raise ValueError(f"state_noise must be a finite number >= 0, got {state_noise}")
        if state_noise > 0 and generator is None:
            raise ValueError("state_noise needs a generator (np.random.Generator) to draw the noise from")
        pixels, prompts = [], []
        for sample in samples:
            images, state = self.check_observation(sample.images, sample.state, sample.instruction)
            pixels.append(torch.stack([self._pixels(images[c]) for c in self.embodiment.camera_names]))
            noise = generator.normal(0.0, state_noise, state.shape) if state_noise > 0 else None
            prompts.append(self.text_tokenizer.encode(self.prompt(state, sample.instruction, state_shift=noise)))
        length = max(map(len, prompts))
        text_ids = torch.full((len(samples), length), self.text_tokenizer.pad_id, dtype=torch.long)
        text_mask = torch.zeros(len(samples), length, dtype=torch.bool)
        for row, ids in enumerate(prompts):
            text_ids[row, : len(ids)] = torch.tensor(ids)
            text_mask[row, : len(ids)] = True
        batch = PolicyBatch(pixels=torch.stack(pixels), text_ids=text_ids, text_mask=text_mask)
        if with_actions:
            batch.actions, batch.action_tokens = self._actions(samples)
        return batch

    def _pixels(self, image: np.ndarray) -> Tensor:
        x = torch.tensor(image).permute(2, 0, 1).float()[None] / 255.0
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", antialias=True)
        return (x[0].clamp(0, 1) - self.mean) / self.std

    def _actions(self, samples: list[Sample]) -> tuple[Tensor, Tensor]:
        shape = (self.embodiment.chunk_length, self.embodiment.dof)
        for index, sample in enumerate(samples):
            if sample.actions is None or np.shape(sample.actions) != shape:
                got = None if sample.actions is None else list(np.shape(sample.actions))
                raise ValueError(f"sample {index}: actions must be {list(shape)} (H, D) in robot units, got {got}")
        actions = np.stack([np.asarray(s.actions, dtype=np.float32) for s in samples])
        states = np.stack([np.asarray(s.state, dtype=np.float32) for s in samples])
        actions = to_action_mode(actions, states, self.tokenizer.config.action_mode)
        ids = [self.vocabulary.to_expert(t) for t in self.tokenizer.tokenize(actions)]
        tokens = torch.full((len(ids), max(map(len, ids))), -1, dtype=torch.long)
        for row, chunk in enumerate(ids):
            tokens[row, : len(chunk)] = torch.tensor(chunk)
        return torch.from_numpy(actions), tokens
