"""Cached stages of the scripted flows (make demo, benchmarks): rerun exactly when an option or upstream run changed."""

import json

import pytest

from faster_core.stages import StageError, cached, finish, run_faster, upstream


def test_a_stage_is_reused_only_with_the_same_options(tmp_path):
    directory = tmp_path / "tokenizer"
    assert cached(directory, {"steps": 10}) is None
    directory.mkdir()
    (directory / "weights").write_text("fitted")
    result = finish(directory, {"steps": 10}, {"minutes": 1.5})
    assert cached(directory, {"steps": 10}) == result and result["minutes"] == 1.5
    assert (directory / "weights").read_text() == "fitted"
    assert cached(directory, {"steps": 20}) is None
    assert not directory.exists()  # a stale stage is wiped before it is rebuilt


def test_a_stage_without_its_stamp_is_rebuilt(tmp_path):
    """What an interrupted run or an older version left behind is never taken for a finished stage."""
    directory = tmp_path / "policy"
    directory.mkdir()
    (directory / "policy_config.json").write_text("{}")
    assert cached(directory, {"steps": 10}) is None and not directory.exists()
    directory.mkdir()
    (directory / "stage.json").write_text(json.dumps({"fingerprint": "0" * 16, "result": {}}))
    assert cached(directory, {"steps": 10}) is None


def test_downstream_stages_depend_on_the_upstream_run(tmp_path):
    first = {"config": {"episodes": 4}, **finish(tmp_path / "a", {"episodes": 4}, {})}
    again = {"config": {"episodes": 4}, **finish(tmp_path / "b", {"episodes": 4}, {})}
    again["finished"] += 1.0  # the same options, run again later
    other = {"config": {"episodes": 5}, "finished": first["finished"]}
    assert upstream({"finished": first["finished"], "config": {"episodes": 4}}) == upstream(first)  # key order
    assert len({upstream(first), upstream(again), upstream(other)}) == 3


def test_run_faster_raises_a_stage_error_naming_the_command(capsys):
    with pytest.raises(StageError, match="faster tokenizer fit --no-such-option"):
        run_faster(["tokenizer", "fit", "--no-such-option"])
    assert "$ faster tokenizer fit --no-such-option" in capsys.readouterr().out
