import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from faster_core.data import DatasetWriter
from faster_core.embodiment import Embodiment
from faster_core.tokenizer.cli import register

from repo_paths import CONFIG_DIR
from tokenizer_testdata import smooth_chunks

SINGLE_ARM = CONFIG_DIR / "single_arm.yaml"
SPEC = Embodiment.from_yaml(SINGLE_ARM)


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="faster")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def dataset(tmp_path) -> Path:
    """Eight 60-step single-arm episodes of smooth joint motion (each episode one long smooth trajectory)."""
    episodes = smooth_chunks(8, 60, 8)
    with DatasetWriter(tmp_path / "ds", fps=20.0, embodiment="single_arm", joint_names=SPEC.joint_names) as writer:
        for actions in episodes:
            writer.add_episode(
                timestamps=np.arange(60) / 20.0, state=actions, action=actions, instruction="wave", success=True
            )
    return tmp_path / "ds"


@pytest.mark.parametrize(
    ("kind", "extra"), [("fastervq", ["--steps", "2", "--batch-size", "8"]), ("fast", []), ("bins", [])]
)
def test_fit_then_eval(kind, extra, dataset, tmp_path, capsys):
    out = tmp_path / kind
    fit = ["tokenizer", "fit", "--data", str(dataset), "--embodiment", str(SINGLE_ARM), "--out", str(out)]
    assert run([*fit, "--kind", kind, "--validation", "0.25", *extra]) == 0
    report, plot = tmp_path / f"{kind}.json", tmp_path / f"{kind}.png"
    evaluate = ["tokenizer", "eval", "--tokenizer", str(out), "--data", str(dataset), "--validation", "0.25"]
    assert run([*evaluate, "--json", str(report), "--plot", str(plot)]) == 0
    printed = capsys.readouterr().out
    assert f"{kind} on 120 val chunks" in printed and "VRR @0.001" in printed  # 2 held-out episodes x 60 steps
    assert json.loads(report.read_text())["chunks"] == 120
    assert plot.stat().st_size > 10_000


@pytest.mark.parametrize("baseline", ["fast", "bins"])
def test_baselines_fit_on_the_training_split_at_eval(baseline, dataset, capsys):
    assert run(["tokenizer", "eval", "--tokenizer", baseline, "--data", str(dataset), "--validation", "0.25"]) == 0
    assert f"{baseline} on 120 val chunks" in capsys.readouterr().out


def test_delta_fit_records_its_mode_and_eval_keeps_to_it(dataset, tmp_path, capsys):
    out = tmp_path / "bins_delta"
    fit = ["tokenizer", "fit", "--data", str(dataset), "--embodiment", str(SINGLE_ARM), "--out", str(out)]
    assert run([*fit, "--kind", "bins", "--action-mode", "delta"]) == 0
    assert "delta actions" in capsys.readouterr().out
    assert json.loads((out / "tokenizer_config.json").read_text())["action_mode"] == "delta"
    evaluate = ["tokenizer", "eval", "--tokenizer", str(out), "--data", str(dataset)]
    assert run(evaluate) == 0
    assert "(delta actions)" in capsys.readouterr().out
    with pytest.raises(ValueError, match="fitted on delta actions, not absolute"):
        run([*evaluate, "--action-mode", "absolute"])


def test_dataset_must_match_the_embodiment(dataset, tmp_path):
    with pytest.raises(ValueError, match=r"embodiment bimanual has \['left_joint1'"):
        run(["tokenizer", "fit", "--data", str(dataset), "--embodiment", "bimanual", "--out", str(tmp_path / "o")])
