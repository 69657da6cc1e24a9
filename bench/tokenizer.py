"""FASTerVQ against FAST (a sweep of DCT scales) and 256 uniform bins, on held-out simulator episodes.

For each embodiment the script generates state-only demonstrations (cached under ``--out``), fits FASTerVQ (cached
unless ``--refit``), FAST per scale and bins on the same training chunks, and evaluates every tokenizer with
``faster_core.tokenizer.metrics.evaluate_tokenizer`` on chunks of episodes none of them saw:

* ``metaworld`` (the single_arm embodiment): trained on every Meta-World task outside MT10, evaluated on MT10,
  i.e. held-out *tasks* as well as episodes;
* ``so101`` (pick-place): trained on episodes from one seed, evaluated on episodes from another.

VRR and l1 are in robot units (radians; Meta-World's gripper closure in metres) after un-normalising. FASTerVQ is
reported per RVQ depth (its first 1, 2, 3 levels: 1x, 2x, 3x C_h x C_a tokens). Speed is per chunk at batch 1 and
batched (``--batch``), on ``--threads`` intra-op threads. Outputs: table.txt, results.json, per embodiment a
frontier PNG (tokens vs VRR@1e-2 and @5e-2) and reconstruction PNGs, all under ``--out``.

    source env.sh && python bench/tokenizer.py [--out artifacts/bench_tokenizer] [--fit-minutes 12]

Chunks include the end-of-episode windows padded by repeating the last action, as ``faster tokenizer fit/eval``
builds them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from faster_core.data import EpisodeDataset, action_chunks
from faster_core.data.sim.metaworld import DEFAULT_TASKS
from faster_core.embodiment import Embodiment
from faster_core.tokenizer import BinTokenizer, FASTerVQ, FASTTokenizer
from faster_core.tokenizer.metrics import SIGMAS, evaluate_tokenizer, token_stats

SCALES = (5, 10, 20, 30, 50, 70, 100, 200)
MT10 = DEFAULT_TASKS  # the simulator module's default task set: the held-out tasks
TARGET_DECODE_MS_BATCH1 = 2.0
TARGET_DECODE_CHUNKS_PER_S = 1000.0
TIE = 5e-4  # VRR differences below this (the table's last digit) count as a tie, not as "above"


@dataclass(frozen=True)
class Bench:
    name: str  # simulator, as faster_core.data.sim.generate names it
    embodiment: str
    train_tasks: tuple[str, ...] | None
    held_out_tasks: tuple[str, ...] | None
    train_episodes: int  # per task for Meta-World
    held_out_episodes: int
    train_seed: int = 0
    held_out_seed: int = 1000


def metaworld_train_tasks() -> tuple[str, ...]:
    from metaworld.policies import ENV_POLICY_MAP

    from faster_core.data.sim.metaworld import TASK_INSTRUCTIONS

    return tuple(sorted(t for t in TASK_INSTRUCTIONS if t in ENV_POLICY_MAP and t not in MT10))


# ----------------------------------------------------------------------------------------------------- data


def ensure_dataset(bench: Bench, split: str, root: Path, regenerate: bool) -> Path:
    """Generate (state-only) once into root/<split>; a finished dataset is reused unless ``regenerate``."""
    from faster_core.data import sim

    path = root / split
    done = path / "bench_generation.json"
    spec = {
        "sim": bench.name,
        "tasks": bench.train_tasks if split == "train" else bench.held_out_tasks,
        "episodes": bench.train_episodes if split == "train" else bench.held_out_episodes,
        "seed": bench.train_seed if split == "train" else bench.held_out_seed,
    }
    if done.is_file() and not regenerate:
        cached = json.loads(done.read_text())
        if {k: cached.get(k) for k in spec} == json.loads(json.dumps(spec)):
            return path
        print(f"[{bench.name}] cached {split} data at {path} was made with other settings: regenerating")
    shutil.rmtree(path, ignore_errors=True)
    partial = root / f"{split}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    print(f"[{bench.name}] generating {split} data: {spec}")
    start = time.perf_counter()
    report = sim.generate(
        bench.name, spec["episodes"], cameras=[], out_dir=partial, seed=spec["seed"], tasks=spec["tasks"]
    )
    partial.rename(path)
    done.write_text(
        json.dumps({**spec, "recorded": report.recorded, "seconds": time.perf_counter() - start}, indent=1) + "\n"
    )
    return path


def load_chunks(path: Path, embodiment: Embodiment, episodes: tuple[int, ...] | None = None) -> np.ndarray:
    dataset = EpisodeDataset(path)
    if tuple(dataset.joint_names) != embodiment.joint_names:
        raise ValueError(f"{path} has joints {dataset.joint_names}, {embodiment.name} has {embodiment.joint_names}")
    ids = range(len(dataset)) if episodes is None else episodes
    return action_chunks(dataset, ids, embodiment.chunk_length)


# ----------------------------------------------------------------------------------------------------- fit


def fit_fastervq(
    train: np.ndarray, val: np.ndarray, embodiment: Embodiment, directory: Path, args: argparse.Namespace
) -> tuple[FASTerVQ, dict[str, Any]]:
    from faster_core.tokenizer.presets import fastervq_config
    from faster_core.tokenizer.train import fit_tokenizer

    settings_file = directory / "bench_fit.json"
    if (directory / "tokenizer_config.json").is_file() and settings_file.is_file() and not args.refit:
        settings = json.loads(settings_file.read_text())
        print(f"[{embodiment.name}] reusing the fitted FASTerVQ in {directory} ({settings}); --refit to fit again")
        return FASTerVQ.from_pretrained(directory), settings
    config = fastervq_config(embodiment, size=args.size)
    steps = args.steps
    if steps is None:  # time steps on this (shared) CPU to turn the minute budget into a step count
        seconds = {}
        for probe in (10, 60):  # the difference leaves out set-up (quantiles, model) and first-call costs
            start = time.perf_counter()
            fit_tokenizer(train, None, config, None, steps=probe, batch_size=args.batch_size, progress=False)
            seconds[probe] = time.perf_counter() - start
        per_step = max(seconds[60] - seconds[10], 1e-3) / 50
        steps = max(100, int(args.fit_minutes * 60 / per_step))
        print(f"[{embodiment.name}] {1e3 * per_step:.0f} ms/step -> {steps} steps for {args.fit_minutes:g} min")
    start = time.perf_counter()
    result = fit_tokenizer(
        train,
        val,
        config,
        directory,
        steps=steps,
        batch_size=args.batch_size,
        lr=args.lr,
        val_every=args.val_every,
        seed=args.seed,
    )
    settings = {
        "size": args.size,
        "parameters": sum(p.numel() for p in result.tokenizer.parameters()),
        "codebook_size": config.codebook_size,
        "steps": steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "train_chunks": len(train),
        "val_chunks": len(val),
        "minutes": (time.perf_counter() - start) / 60,
        "threads": torch.get_num_threads(),
        "final_val_l1": next((h["val_l1"] for h in reversed(result.history) if "val_l1" in h), None),
    }
    settings_file.write_text(json.dumps(settings, indent=1) + "\n")
    return result.tokenizer.eval(), settings


class DepthView:
    """FASTerVQ read to its first ``depth`` RVQ levels: the tokenizer a policy gets by stopping early."""

    def __init__(self, model: FASTerVQ, depth: int):
        self.model, self.depth = model, depth
        self.kind = f"fastervq (RVQ depth {depth})"
        self._length = depth * model.config.time_tokens * model.config.action_tokens

    @property
    def vocab_size(self) -> int:
        return self.model.vocab_size

    @property
    def tokens_per_chunk(self) -> int:
        return self._length

    @property
    def fixed_length(self) -> bool:
        return True

    def tokenize(self, actions: Any) -> list[list[int]]:
        return [t[: self._length] for t in self.model.tokenize(actions)]

    def detokenize(self, tokens: Any) -> np.ndarray:
        return self.model.detokenize(tokens)


# ----------------------------------------------------------------------------------------------------- evaluate


def decode_batch1_median_ms(tokenizer: Any, chunks: np.ndarray, count: int) -> float:
    """Median over ``count`` chunks of one-chunk decodes: robust to the other jobs on a shared CPU."""
    tokens = tokenizer.tokenize(chunks[:count])
    tokenizer.detokenize(tokens[:1])
    times = []
    for sequence in tokens:
        start = time.perf_counter()
        tokenizer.detokenize([sequence])
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def evaluate(name: str, tokenizer: Any, chunks: np.ndarray, args: argparse.Namespace, **extra: Any) -> dict:
    result = evaluate_tokenizer(tokenizer, chunks, batch_size=args.batch, timing_chunks=args.timing_chunks)
    result.pop("per_depth", None)
    result["name"] = name
    result["decode_ms_batch1_median"] = decode_batch1_median_ms(tokenizer, chunks, args.timing_chunks)
    result["decode_chunks_per_s"] = 1e3 / result["decode_ms"] if result["decode_ms"] > 0 else float("inf")
    return {**result, **extra}


def level_stats(model: FASTerVQ, chunks: np.ndarray, batch: int) -> list[dict[str, float]]:
    """Codebook usage and normalised entropy of each RVQ level's codes on ``chunks``."""
    grid = model.config.time_tokens * model.config.action_tokens
    tokens = [t for i in range(0, len(chunks), batch) for t in model.tokenize(chunks[i : i + batch])]
    return [
        token_stats([t[level * grid : (level + 1) * grid] for t in tokens], model.vocab_size)
        for level in range(model.config.codebooks)
    ]


def run_bench(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    embodiment = Embodiment.load(bench.embodiment)
    root = args.out / bench.name
    train_path = ensure_dataset(bench, "train", root / "data", args.regenerate)
    held_path = ensure_dataset(bench, "held_out", root / "data", args.regenerate)
    # Fit-time validation comes from training episodes (never the held-out ones): it only logs progress.
    split = EpisodeDataset(train_path).split(args.fit_validation, args.seed)
    train = load_chunks(train_path, embodiment, split.train)
    val = load_chunks(train_path, embodiment, split.validation)
    if len(val) > args.max_val_chunks:
        val = val[np.random.default_rng(args.seed).choice(len(val), args.max_val_chunks, replace=False)]
    held = load_chunks(held_path, embodiment)
    data = {
        "train_episodes": len(split.train),
        "train_chunks": len(train),
        "fit_val_chunks": len(val),
        "held_out_episodes": len(EpisodeDataset(held_path)),
        "held_out_chunks": len(held),
        "chunk": list(held.shape[1:]),
    }
    print(f"[{bench.name}] {data}")

    model, fit = fit_fastervq(train, val, embodiment, root / "fastervq", args)
    rows = []
    levels = level_stats(model, held, args.batch)
    for depth in range(1, model.config.codebooks + 1):
        view = DepthView(model, depth)
        rows.append(
            evaluate(
                f"FASTerVQ d{depth}",
                view,
                held,
                args,
                family="fastervq",
                level_usage_pct=levels[depth - 1]["usage_pct"],
                level_entropy=levels[depth - 1]["entropy_norm"],
            )
        )
    fast: dict[float, FASTTokenizer] = {}
    for scale in args.scales:
        fast[scale] = FASTTokenizer.fit(train, scale=scale)
        rows.append(evaluate(f"FAST s={scale:g}", fast[scale], held, args, family="fast", scale=scale))
    bins = BinTokenizer.fit(train)
    rows.append(evaluate("bins 256", bins, held, args, family="bins"))

    verdict = verdicts(rows)
    plots = write_plots(
        bench=bench, embodiment=embodiment, rows=rows, model=model, fast=fast, bins=bins, held=held, root=root
    )
    summary = {"bench": bench.name, "embodiment": embodiment.name, "data": data, "fit": fit, "rows": rows}
    return {**summary, **verdict, "plots": plots}


# ----------------------------------------------------------------------------------------------------- verdicts


def fast_frontier(rows: list[dict], sigma: float) -> tuple[np.ndarray, np.ndarray]:
    points = sorted((r["tokens_mean"], r["vrr"][sigma]) for r in rows if r["family"] == "fast")
    return np.array([p[0] for p in points]), np.array([p[1] for p in points])


def compare(row: dict, rows: list[dict], sigma: float) -> dict[str, Any]:
    """The VQ point against FAST at the same token count: interpolated, and the best FAST point not above it."""
    tokens, value = row["tokens_mean"], row["vrr"][sigma]
    xs, ys = fast_frontier(rows, sigma)
    inside = xs[0] <= tokens <= xs[-1]
    interp = float(np.interp(tokens, xs, ys)) if inside else None
    cheaper = [y for x, y in zip(xs, ys, strict=True) if x <= tokens]
    best = max(cheaper) if cheaper else None
    # FAST-eq: tokens FAST needs for the same VRR on its (monotone-ised) sweep.
    envelope = np.maximum.accumulate(ys)
    reach = np.nonzero(envelope >= value)[0]
    if not len(reach):
        fast_eq = None
    elif reach[0] == 0:
        fast_eq = float(xs[0])
    else:
        i = reach[0]
        lo, hi = envelope[i - 1], envelope[i]
        fast_eq = float(xs[i - 1] + (xs[i] - xs[i - 1]) * (value - lo) / (hi - lo)) if hi > lo else float(xs[i])
    return {
        "tokens": tokens,
        "vq": value,
        "fast_interp": interp,
        "fast_best_le": best,
        "above_interp": None if interp is None else _order(value, interp),
        "above_best_le": None if best is None else _order(value, best),
        "fast_eq_tokens": fast_eq,
        # Below FAST's cheapest point: above the sweep iff it beats that point, which spends more tokens.
        "fast_cheapest": (float(xs[0]), float(ys[0])),
        "dominates_cheapest": _order(value, float(ys[0])) if tokens < xs[0] else None,
    }


def _order(value: float, reference: float) -> str:
    return "ABOVE" if value > reference + TIE else "TIE" if value >= reference - TIE else "NOT above"


def verdicts(rows: list[dict]) -> dict[str, Any]:
    comparisons = {
        row["name"]: {str(s): compare(row, rows, s) for s in (1e-2, 5e-2)}
        for row in rows
        if row["family"] == "fastervq"
    }
    full = [r for r in rows if r["family"] == "fastervq"][-1]
    speed = {
        "decode_ms_batch1": full["decode_ms_batch1"],
        "decode_ms_batch1_median": full["decode_ms_batch1_median"],
        "decode_chunks_per_s": full["decode_chunks_per_s"],
        "batch1_ok": full["decode_ms_batch1"] < TARGET_DECODE_MS_BATCH1,
        "batch1_median_ok": full["decode_ms_batch1_median"] < TARGET_DECODE_MS_BATCH1,
        "batched_ok": full["decode_chunks_per_s"] >= TARGET_DECODE_CHUNKS_PER_S,
    }
    return {"comparisons": comparisons, "speed": speed}


def verdict_lines(result: dict) -> list[str]:
    lines = [f"Verdict {result['bench']} ({result['embodiment']}):"]

    def fmt(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    for name, by_sigma in result["comparisons"].items():
        parts = []
        for sigma, c in by_sigma.items():
            if c["above_interp"] is None and c["tokens"] < c["fast_cheapest"][0]:
                x, y = c["fast_cheapest"]
                interp = f"{c['dominates_cheapest']} FAST's cheapest point ({x:.1f} tok, {y:.3f}; more tokens)"
            elif c["above_interp"] is None:
                interp = "beyond FAST's token range"
            else:
                interp = f"{c['above_interp']} interp {fmt(c['fast_interp'])}"
            if c["above_best_le"] is None:
                best = "no FAST point <= its tokens"
            else:
                best = f"{c['above_best_le']} best FAST<=tokens {fmt(c['fast_best_le'])}"
            if c["fast_eq_tokens"] is None:
                eq = "FAST never reaches it"
            elif c["vq"] <= c["fast_cheapest"][1]:
                eq = "FAST-eq <= its cheapest point"
            else:
                eq = f"FAST-eq {c['fast_eq_tokens']:.1f} tok"
            parts.append(f"VRR@{float(sigma):g} {c['vq']:.3f}: {interp}; {best}; {eq}")
        lines.append(f"  {name} ({next(iter(by_sigma.values()))['tokens']:.0f} tok) | " + " | ".join(parts))
    full, by_sigma = next(reversed(result["comparisons"].items()))
    checks = [c[key] for c in by_sigma.values() for key in ("above_interp", "above_best_le")]
    lines.append(
        f"  target: {full} point above FAST's sweep at VRR@1e-2 and @5e-2 (interpolated and best FAST<=tokens): "
        + ("MET" if all(c == "ABOVE" for c in checks) else f"MISSED ({checks})")
    )
    s = result["speed"]
    lines.append(
        f"  decode (full depth): {s['decode_ms_batch1']:.3f} ms/chunk at batch 1, mean "
        f"({'meets' if s['batch1_ok'] else 'MISSES'} < {TARGET_DECODE_MS_BATCH1:g} ms), median "
        f"{s['decode_ms_batch1_median']:.3f} ms ({'meets' if s['batch1_median_ok'] else 'MISSES'}); "
        f"{s['decode_chunks_per_s']:,.0f} chunks/s batched "
        f"({'meets' if s['batched_ok'] else 'MISSES'} >= {TARGET_DECODE_CHUNKS_PER_S:,.0f})"
    )
    return lines


# ----------------------------------------------------------------------------------------------------- output


def table(results: list[dict], batch: int) -> str:
    header = (
        f"{'embodiment':<10} {'tokenizer':<12} {'tok mean':>8} {'max':>4} {'L1':>8} "
        + " ".join(f"{'VRR@' + format(s, 'g'):>8}" for s in SIGMAS)
        + f" {'usage%':>6} {'entropy':>7} {'enc ms b1':>9} {'dec ms b1':>9} {'(median)':>8} "
        + f"{'enc ms b' + str(batch):>11} {'dec ms b' + str(batch):>11} {'dec chunks/s':>12}"
    )
    lines = [header, "-" * len(header)]
    for result in results:
        label = f"{result['bench']}"
        for r in result["rows"]:
            usage = r.get("level_usage_pct", r["usage_pct"])
            entropy = r.get("level_entropy", r["entropy_norm"])
            lines.append(
                f"{label:<10} {r['name']:<12} {r['tokens_mean']:>8.1f} {r['tokens_max']:>4d} {r['l1']:>8.5f} "
                + " ".join(f"{r['vrr'][s]:>8.3f}" for s in SIGMAS)
                + f" {usage:>6.1f} {entropy:>7.3f} {r['encode_ms_batch1']:>9.3f} {r['decode_ms_batch1']:>9.3f} "
                + f"{r['decode_ms_batch1_median']:>8.3f} "
                + f"{r['encode_ms']:>11.4f} {r['decode_ms']:>11.4f} {r['decode_chunks_per_s']:>12,.0f}"
            )
            label = ""
        lines.append("")
    return "\n".join(lines)


def write_plots(
    *,
    bench: Bench,
    embodiment: Embodiment,
    rows: list[dict],
    model: FASTerVQ,
    fast: dict[float, FASTTokenizer],
    bins: BinTokenizer,
    held: np.ndarray,
    root: Path,
) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    from faster_core.tokenizer.plots import plot_reconstructions

    paths: dict[str, str] = {}
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, sigma in zip(axes, (1e-2, 5e-2), strict=True):
        fast_rows = sorted((r for r in rows if r["family"] == "fast"), key=lambda r: r["tokens_mean"])
        axis.plot([r["tokens_mean"] for r in fast_rows], [r["vrr"][sigma] for r in fast_rows], "o-", label="FAST")
        for r in fast_rows:
            point = (r["tokens_mean"], r["vrr"][sigma])
            axis.annotate(f"{r['scale']:g}", point, fontsize=7, xytext=(3, -9), textcoords="offset points")
        for r, marker in zip((r for r in rows if r["family"] == "fastervq"), "^sD", strict=False):
            axis.plot(r["tokens_mean"], r["vrr"][sigma], marker, markersize=9, label=r["name"], color="C3")
        for r in rows:
            if r["family"] == "bins":
                axis.plot(r["tokens_mean"], r["vrr"][sigma], "X", markersize=9, color="k", label=r["name"])
        axis.set_xscale("log")
        axis.xaxis.set_major_formatter(ticker.ScalarFormatter())
        axis.xaxis.set_minor_formatter(ticker.NullFormatter())
        axis.set_xticks([5, 10, 20, 50, 100, 200])
        axis.set_xlabel("tokens per chunk (mean)")
        axis.set_ylabel(f"VRR@{sigma:g} (robot units)")
        axis.set_ylim(-0.02, 1.02)
        axis.grid(True, which="both", alpha=0.3)
        axis.set_title(f"{bench.name} ({embodiment.name}), held out: VRR@{sigma:g}")
        axis.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    paths["frontier"] = str(root / "frontier.png")
    figure.savefig(paths["frontier"], dpi=110)
    plt.close(figure)

    full = [r for r in rows if r["family"] == "fastervq"][-1]
    fast_tokens = {r["scale"]: r["tokens_mean"] for r in rows if r["family"] == "fast"}
    nearest = min(fast, key=lambda s: abs(fast_tokens[s] - full["tokens_mean"]))
    picks = {"fastervq": model, "fast_s10": fast.get(10.0), f"fast_s{nearest:g}": fast[nearest], "bins": bins}
    for name, tokenizer in picks.items():
        if tokenizer is None:
            continue
        path = root / f"recon_{name}.png"
        plot_reconstructions(tokenizer, held, path, joint_names=embodiment.joint_names)
        paths[f"recon_{name}"] = str(path)
    return paths


# ----------------------------------------------------------------------------------------------------- main


def benches(args: argparse.Namespace) -> dict[str, Bench]:
    return {
        "metaworld": Bench(
            name="metaworld",
            embodiment="single_arm",
            train_tasks=metaworld_train_tasks(),
            held_out_tasks=MT10,
            train_episodes=args.metaworld_train_episodes,
            held_out_episodes=args.metaworld_held_out_episodes,
        ),
        "so101": Bench(
            name="so101",
            embodiment="so101",
            train_tasks=None,
            held_out_tasks=None,
            train_episodes=args.so101_train_episodes,
            held_out_episodes=args.so101_held_out_episodes,
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("artifacts/bench_tokenizer"))
    parser.add_argument("--embodiments", nargs="+", choices=("metaworld", "so101"), default=["metaworld", "so101"])
    parser.add_argument("--metaworld-train-episodes", type=int, default=32, help="per training task (non-MT10)")
    parser.add_argument("--metaworld-held-out-episodes", type=int, default=20, help="per MT10 task")
    parser.add_argument("--so101-train-episodes", type=int, default=800)
    parser.add_argument("--so101-held-out-episodes", type=int, default=100)
    parser.add_argument("--regenerate", action="store_true", help="generate the datasets again")
    parser.add_argument("--refit", action="store_true", help="fit FASTerVQ again even if a fitted one is cached")
    parser.add_argument("--size", choices=("cpu", "paper"), default="cpu")
    parser.add_argument("--fit-minutes", type=float, default=15.0, help="FASTerVQ budget per embodiment")
    parser.add_argument("--steps", type=int, help="FASTerVQ steps (overrides --fit-minutes)")
    parser.add_argument("--batch-size", type=int, default=128, help="FASTerVQ training batch")
    parser.add_argument("--lr", type=float, default=1e-3, help="FASTerVQ peak lr (cosine; paper 1e-4)")
    parser.add_argument("--val-every", type=int, default=1000)
    parser.add_argument("--fit-validation", type=float, default=0.05, help="training episodes held for fit logs")
    parser.add_argument("--max-val-chunks", type=int, default=2000)
    parser.add_argument("--scales", type=float, nargs="+", default=[float(s) for s in SCALES])
    parser.add_argument("--batch", type=int, default=256, help="batch for batched encode/decode timings")
    parser.add_argument("--timing-chunks", type=int, default=200, help="chunks timed one at a time")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (fit and timings)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python bench/tokenizer.py " + shlex.join(sys.argv[1:] if argv is None else argv)

    results = [run_bench(benches(args)[name], args) for name in args.embodiments]
    text = [
        f"$ {command}",
        f"FASTerVQ vs FAST (scales {', '.join(f'{s:g}' for s in args.scales)}) vs 256 bins on held-out episodes; "
        f"VRR/L1 in robot units; usage/entropy: per RVQ level for FASTerVQ d<k> (level k), whole vocabulary else; "
        f"{args.threads} thread(s)",
    ]
    for r in results:
        d, f = r["data"], r["fit"]
        text.append(
            f"{r['bench']} ({r['embodiment']}, chunk {d['chunk'][0]}x{d['chunk'][1]}): train {d['train_episodes']} "
            f"episodes / {d['train_chunks']} chunks, held out {d['held_out_episodes']} episodes / "
            f"{d['held_out_chunks']} chunks; FASTerVQ {f['parameters']:,} params K={f['codebook_size']}, "
            f"{f['steps']} steps x batch {f['batch_size']}, lr {f['lr']:g}, {f['minutes']:.1f} min"
        )
    text += ["", table(results, args.batch)]
    for r in results:
        text += verdict_lines(r)
    text += [
        "",
        "(interp: FAST's sweep linearly interpolated in mean tokens; best FAST<=tokens: the best FAST point using no "
        "more mean tokens than FASTerVQ; FAST-eq: tokens FAST needs for the same VRR on its sweep)",
    ]
    for r in results:
        text.append(f"plots {r['bench']}: " + ", ".join(r["plots"].values()))
    report = "\n".join(text)
    print("\n" + report)
    (args.out / "table.txt").write_text(report + "\n")
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=_json_default) + "\n")
    return 0


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
