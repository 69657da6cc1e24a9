import subprocess
import sys

from faster_core.cli import main

from repo_paths import CONFIG_DIR


def test_help_lists_groups(capsys):
    try:
        main(["--help"])
    except SystemExit as exit_:
        assert exit_.code == 0
    assert "embodiment" in capsys.readouterr().out


def test_embodiment_show_prints_joints(capsys):
    assert main(["embodiment", "show", str(CONFIG_DIR / "whole_body.yaml")]) == 0
    out = capsys.readouterr().out
    assert "whole_body  (21 DoF" in out
    assert "base_yaw" in out
    assert "126 tokens, BAR block 8" in out


def test_errors_are_reported_not_raised(tmp_path, capsys):
    assert main(["embodiment", "show", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_console_script_runs():
    result = subprocess.run(
        [sys.executable, "-m", "faster_core.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("faster ")
