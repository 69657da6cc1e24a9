from pathlib import Path

import numpy as np
import pytest
import yaml

from faster_core.embodiment import OPTIONAL_PARAMETERS, PARAMETERS, Embodiment, EmbodimentError, load_parameter_file

from repo_paths import ALL_CONFIGS, CONFIG_DIR, EMBODIMENTS


@pytest.mark.parametrize("name", ALL_CONFIGS)
def test_shipped_configs_parse_and_match_the_schema(name):
    spec = Embodiment.from_yaml(CONFIG_DIR / f"{name}.yaml")
    assert spec.name == name
    assert sum(g.size for g in spec.action_groups) == spec.dof
    assert set(spec.to_parameters()) == set(PARAMETERS)
    assert (
        set(PARAMETERS) - OPTIONAL_PARAMETERS
        <= set(load_parameter_file(CONFIG_DIR / f"{name}.yaml"))
        <= set(PARAMETERS)
    )


def test_tracking_error_defaults_to_one_control_period_at_the_velocity_limit(tmp_path):
    spec = Embodiment.from_yaml(_write(tmp_path, **{"limits.tracking_error": None}))
    np.testing.assert_allclose(spec.limits.tracking_error, spec.limits.velocity / spec.control_rate_hz)
    so101 = Embodiment.load("so101")  # set from the expert's demonstrations: the jaw squeezes far past the cube
    np.testing.assert_array_equal(so101.limits.tracking_error, [0.1, 0.1, 0.1, 0.6, 1.2, 1.6])


def test_paper_table4_layouts():
    arm, bimanual, body = (Embodiment.from_yaml(CONFIG_DIR / f"{n}.yaml") for n in EMBODIMENTS)
    assert (arm.dof, arm.chunk_length, arm.tokenizer.time_tokens, arm.block_size) == (8, 20, 1, 7)
    assert (bimanual.dof, bimanual.chunk_length, bimanual.tokenizer.time_tokens, bimanual.block_size) == (14, 32, 2, 8)
    assert (body.dof, body.chunk_length, body.tokenizer.time_tokens, body.block_size) == (21, 32, 2, 8)
    assert [g.name for g in body.action_groups] == [
        "left_arm",
        "left_gripper",
        "right_arm",
        "right_gripper",
        "torso",
        "base",
    ]
    assert all(spec.tokenizer.codebooks == 3 for spec in (arm, bimanual, body))


def test_parameters_round_trip():
    spec = Embodiment.from_yaml(CONFIG_DIR / "bimanual.yaml")
    again = Embodiment.from_parameters(spec.to_parameters())
    assert again.to_parameters() == spec.to_parameters()
    assert [(g.start, g.stop) for g in again.action_groups] == [(0, 6), (6, 7), (7, 13), (13, 14)]
    np.testing.assert_array_equal(again.limits.velocity, spec.limits.velocity)


def _write(tmp_path: Path, **changes) -> Path:
    params = Embodiment.from_yaml(CONFIG_DIR / "single_arm.yaml").to_parameters()
    params.update(changes)
    params = {k: v for k, v in params.items() if v is not None}
    path = tmp_path / "robot.yaml"
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}))
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"action_groups.sizes": [6, 1]}, "sum to the 8 joints"),
        ({"limits.velocity": [1.0] * 7}, "limits.velocity must list 8"),
        ({"joint_names": ["a"] * 8}, "duplicates"),
        ({"chunk_length": 21}, "must divide chunk_length"),
        ({"control_rate_hz": -5.0}, "control_rate_hz must be positive"),
        ({"cameras.topics": ["/a"]}, "cameras.names (2) and cameras.topics (1)"),
        ({"policy.block_size": None}, "missing parameter 'policy.block_size'"),
        ({"limits.position_lower": [5.0] * 8}, "position_lower >= position_upper"),
        ({"limits.tracking_error": [0.1] * 7}, "limits.tracking_error must list 8"),
        ({"limits.tracking_error": [-0.1] * 8}, "limits.tracking_error must be >= 0"),
    ],
)
def test_bad_files_name_the_field(tmp_path, changes, message):
    with pytest.raises(EmbodimentError, match=None) as error:
        Embodiment.from_yaml(_write(tmp_path, **changes))
    assert message in str(error.value)


def test_resolve_by_name_uses_ament_prefix(tmp_path, monkeypatch):
    share = tmp_path / "share" / "faster_bringup" / "config"
    share.mkdir(parents=True)
    (share / "my_robot.yaml").write_text((CONFIG_DIR / "whole_body.yaml").read_text())
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path))
    (tmp_path / "my_robot").mkdir()  # a folder of the same name in the working directory does not shadow it
    monkeypatch.chdir(tmp_path)
    assert Embodiment.load("my_robot").dof == 21
    with pytest.raises(EmbodimentError, match=r"unknown embodiment 'nope'.*my_robot"):
        Embodiment.load("nope")


def test_unreadable_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("joint_names: [a, b]\n")
    with pytest.raises(EmbodimentError, match="no ros__parameters"):
        Embodiment.from_yaml(path)
