"""FASTerVQ: patchifier -> TAAE encoder -> residual VQ -> TAAE decoder (paper §3.1, Alg. 1).

A chunk [H, D] in robot units becomes a fixed grid of codes [N_c, C_h, C_a]; the policy reads it level by level
(coarse to fine), each level row-major over (C_h, C_a). Weights are stored as safetensors beside a JSON config that
also carries the normalisation statistics and the embodiment's dimension groups, so a saved directory is all a
robot needs; nothing is ever unpickled.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from faster_core.data.chunks import check_action_mode
from faster_core.tokenizer.interface import check_actions, config_from_dict, read_config, write_config
from faster_core.tokenizer.loss import LossTerms, faster_loss
from faster_core.tokenizer.normalize import normalize, unnormalize
from faster_core.tokenizer.patchify import PatchLayout, patchify, unpatchify
from faster_core.tokenizer.rvq import ResidualVQ
from faster_core.tokenizer.taae import LatentLayout, TAAEDecoder, TAAEEncoder

WEIGHTS_FILE = "model.safetensors"
FORMAT_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class FASTerVQConfig:
    chunk_length: int  # H
    group_sizes: tuple[int, ...]  # action-dimension groups in action order; they sum to D
    group_names: tuple[str, ...] = ()  # e.g. ("arm", "gripper"); for messages and provenance
    embodiment: str = ""  # the embodiment this tokenizer was built for
    patch_length: int = 4  # h
    time_tokens: int = 1  # C_h
    action_tokens: int = 0  # C_a: D (one per dimension, Table 4) or the number of groups; 0 means D
    codebooks: int = 3  # N_c
    codebook_size: int = 1024  # K (paper: 4096)
    latent_dim: int = 8  # d (paper: 128)
    width: int = 64  # TAAE transformer width
    depth: int = 1  # transformer blocks per TAAE stage (4 stages)
    heads: int = 4
    mlp_ratio: int = 4
    ema_decay: float = 0.99
    ema_eps: float = 1e-5
    dead_code_threshold: float = 0.1  # fraction of a uniform code's usage below which a code is re-initialised
    commitment_weight: float = 0.25  # lambda in Eq. 1 (beta = 0.25)
    dct_weight: float = 1.0  # weight of the DCT l1 term in Eq. 1
    q01: tuple[float, ...] | None = None  # per-dimension normalisation bounds in robot units (set by fitting)
    q99: tuple[float, ...] | None = None
    action_mode: str = "absolute"  # the chunks it was fitted on: "absolute" targets or "delta" (minus the state)

    def __post_init__(self):
        check_action_mode(self.action_mode)
        if self.action_tokens == 0:
            object.__setattr__(self, "action_tokens", sum(self.group_sizes))
        self.latent_layout  # noqa: B018 -- validates H, h, groups, C_h and C_a
        if self.group_names and len(self.group_names) != len(self.group_sizes):
            raise ValueError(f"group_names {self.group_names} do not match group_sizes {self.group_sizes}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be a multiple of heads {self.heads}")
        if (self.q01 is None) != (self.q99 is None):
            raise ValueError("q01 and q99 must be given together")
        if self.q01 is not None:
            q01, q99 = np.asarray(self.q01, dtype=float), np.asarray(self.q99, dtype=float)
            if q01.shape != (self.action_dim,) or q99.shape != (self.action_dim,):
                raise ValueError(f"q01 and q99 need {self.action_dim} values (one per action dimension)")
            if not (np.all(np.isfinite(q01)) and np.all(np.isfinite(q99)) and np.all(q01 <= q99)):
                raise ValueError("q01 and q99 must be finite with q01 <= q99")

    @property
    def action_dim(self) -> int:  # D
        return sum(self.group_sizes)

    @property
    def patch_layout(self) -> PatchLayout:
        return PatchLayout(self.chunk_length, self.patch_length, tuple(self.group_sizes))

    @property
    def latent_layout(self) -> LatentLayout:
        return LatentLayout.for_action_tokens(
            self.patch_layout, time_tokens=self.time_tokens, action_tokens=self.action_tokens
        )

    @property
    def tokens_per_chunk(self) -> int:
        return self.codebooks * self.time_tokens * self.action_tokens


@dataclass(frozen=True)
class FASTerVQOutput:
    loss: Tensor
    terms: LossTerms
    codes: Tensor  # [B, N_c, C_h, C_a]
    recon: Tensor  # [B, H, D], normalised


class FASTerVQ(nn.Module):
    """The FASTerVQ action tokenizer; ``forward`` trains it, ``encode``/``decode`` run it in robot units."""

    kind = "fastervq"

    def __init__(self, config: FASTerVQConfig):
        super().__init__()
        self.config = config
        layout = config.latent_layout
        size = {"width": config.width, "depth": config.depth, "heads": config.heads, "mlp_ratio": config.mlp_ratio}
        self.encoder = TAAEEncoder(layout=layout, latent_dim=config.latent_dim, **size)
        self.decoder = TAAEDecoder(layout=layout, latent_dim=config.latent_dim, **size)
        self.quantizer = ResidualVQ(
            dim=config.latent_dim,
            num_quantizers=config.codebooks,
            codebook_size=config.codebook_size,
            decay=config.ema_decay,
            eps=config.ema_eps,
            dead_code_threshold=config.dead_code_threshold,
        )
        stats = (config.q01, config.q99) if config.q01 is not None else ((0.0,) * config.action_dim,) * 2
        self.register_buffer("q01", torch.tensor(stats[0], dtype=torch.float32), persistent=False)
        self.register_buffer("q99", torch.tensor(stats[1], dtype=torch.float32), persistent=False)

    @property
    def vocab_size(self) -> int:
        return self.config.codebook_size

    @property
    def tokens_per_chunk(self) -> int:
        return self.config.tokens_per_chunk

    @property
    def fixed_length(self) -> bool:
        return True

    def normalize(self, actions: Tensor) -> Tensor:
        if self.config.q01 is None:
            raise ValueError("this FASTerVQ has no normalisation stats (q01/q99): fit it or set them in its config")
        return normalize(actions.float(), self.q01, self.q99)

    def forward(self, actions: Tensor) -> FASTerVQOutput:
        """Training step on a batch [B, H, D] in robot units: Eq. 1 on normalised actions; EMA-updates codebooks."""
        actions, _ = check_actions(actions, chunk_length=self.config.chunk_length, action_dim=self.config.action_dim)
        target = self.normalize(actions)
        z = self.encoder(patchify(target, self.config.patch_layout))
        quantized = self.quantizer(z)
        recon = unpatchify(self.decoder(quantized.quantized), self.config.patch_layout)
        terms = faster_loss(
            target,
            recon,
            z,
            quantized.quantized,
            commitment_weight=self.config.commitment_weight,
            dct_weight=self.config.dct_weight,
        )
        return FASTerVQOutput(terms.total, terms, quantized.codes.permute(0, 3, 1, 2), recon)

    @torch.no_grad()
    def encode(self, actions: Tensor | np.ndarray) -> Tensor:
        """Actions [B, H, D] or [H, D] in robot units -> int64 codes [B, N_c, C_h, C_a] or [N_c, C_h, C_a]."""
        actions, batched = check_actions(
            actions, chunk_length=self.config.chunk_length, action_dim=self.config.action_dim
        )
        device = self.q01.device
        actions = torch.as_tensor(actions, dtype=torch.float32, device=device)
        z = self.encoder(patchify(self.normalize(actions), self.config.patch_layout))
        codes = self.quantizer(z, update=False).codes.permute(0, 3, 1, 2).contiguous()
        return codes if batched else codes[0]

    @torch.no_grad()
    def decode(self, codes: Tensor | np.ndarray) -> Tensor:
        """Codes [B, L, C_h, C_a] or [L, C_h, C_a] -> float32 actions [B, H, D] or [H, D] in robot units.

        L may be below N_c: the first L levels give a coarser reconstruction.
        """
        codes, batched = self._check_codes(codes)
        z_q = self.quantizer.decode(codes.permute(0, 2, 3, 1))
        recon = unpatchify(self.decoder(z_q), self.config.patch_layout)
        if self.config.q01 is None:
            raise ValueError("this FASTerVQ has no normalisation stats (q01/q99): fit it or set them in its config")
        actions = unnormalize(recon, self.q01, self.q99)
        return actions if batched else actions[0]

    def tokenize(self, actions: Tensor | np.ndarray) -> list[list[int]]:
        """Flat ids per chunk: level-major, then row-major over (C_h, C_a); ids are codes in [0, K)."""
        codes = self.encode(actions)
        return codes.reshape(codes.shape[0] if codes.ndim == 4 else 1, -1).tolist()

    def detokenize(self, tokens: Sequence[Sequence[int]]) -> np.ndarray:
        """Inverse of ``tokenize`` for a batch: [B, H, D] float32 in robot units (a prefix of whole levels works)."""
        grid = self.config.time_tokens * self.config.action_tokens
        lengths = {len(t) for t in tokens}
        if len(lengths) != 1 or next(iter(lengths)) % grid or not 0 < next(iter(lengths)) <= self.tokens_per_chunk:
            raise ValueError(
                f"each token sequence must hold whole levels of {grid} tokens, at most {self.tokens_per_chunk}, all "
                f"of one length; got lengths {sorted(lengths)}"
            )
        codes = np.asarray(tokens, dtype=np.int64).reshape(
            len(tokens), -1, self.config.time_tokens, self.config.action_tokens
        )
        return self.decode(codes).cpu().numpy()

    def _check_codes(self, codes: Any) -> tuple[Tensor, bool]:
        config = self.config
        if not isinstance(codes, torch.Tensor):
            codes = np.asarray(codes)
            if not np.issubdtype(codes.dtype, np.integer):
                raise ValueError(f"codes must be integers, got dtype {codes.dtype}")
            codes = torch.from_numpy(codes.astype(np.int64))
        elif codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
            raise ValueError(f"codes must be integers, got dtype {codes.dtype}")
        grid = (config.time_tokens, config.action_tokens)
        if codes.ndim not in (3, 4) or tuple(codes.shape[-2:]) != grid or not 1 <= codes.shape[-3] <= config.codebooks:
            raise ValueError(
                f"codes must have shape [B, L, {grid[0]}, {grid[1]}] or [L, {grid[0]}, {grid[1]}] (L levels, "
                f"1 <= L <= N_c = {config.codebooks}), got {list(codes.shape)}"
            )
        batched = codes.ndim == 4
        codes = (codes if batched else codes[None]).to(device=self.q01.device, dtype=torch.long)
        bad = (codes < 0) | (codes >= config.codebook_size)
        if bad.any():
            first = [int(v) for v in torch.nonzero(bad)[0]]
            raise ValueError(
                f"codes must lie in [0, {config.codebook_size}): {int(bad.sum())} out of range, first "
                f"{int(codes[tuple(first)])} at (chunk, level, time, action) = {tuple(first)}"
            )
        return codes, batched

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """tokenizer_config.json (config + normalisation + groups) and model.safetensors (weights, codebooks)."""
        directory = write_config(
            directory, self.kind, {"format_version": FORMAT_VERSION, **dataclasses.asdict(self.config)}
        )
        state = {name: tensor.detach().cpu().contiguous() for name, tensor in self.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": "pt", "type": self.kind})

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, *, device: str | torch.device = "cpu") -> FASTerVQ:
        directory = Path(directory)
        data = read_config(directory, cls.kind)
        version = data.pop("format_version", None)
        if version != FORMAT_VERSION:
            raise ValueError(
                f"{directory}: unsupported FASTerVQ format_version {version!r} (expected {FORMAT_VERSION})"
            )
        model = cls(config_from_dict(FASTerVQConfig, data, str(directory)))
        weights = directory / WEIGHTS_FILE
        if not weights.is_file():
            raise ValueError(f"{directory}: missing {WEIGHTS_FILE}")
        state = load_file(str(weights))
        missing, unexpected = set(model.state_dict()) - set(state), set(state) - set(model.state_dict())
        if missing or unexpected:
            raise ValueError(
                f"{weights} does not match its config: missing {sorted(missing)}, unexpected {sorted(unexpected)}"
            )
        try:
            model.load_state_dict(state)
        except RuntimeError as error:  # shape mismatches
            raise ValueError(f"{weights} does not match its config: {error}") from error
        return model.to(device).eval()
