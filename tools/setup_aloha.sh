#!/usr/bin/env bash
# Idempotent set-up of the optional ALOHA environment .venv-aloha: gym-aloha 0.1.5 on MuJoCo 2.3.7 (its
# end-effector env does not track on MuJoCo 3, which the main .venv pins), and faster_core (editable, no
# dependencies) for the episode writer. Re-running only reinstalls when requirements-aloha.txt changed.
# Then: .venv-aloha/bin/python -m faster_core.data.sim.aloha --episodes 10 --task transfer-cube --out DIR
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv-aloha"
python="${PYTHON:-python3.11}"

if [ ! -x "$venv/bin/python" ]; then
  echo "[setup-aloha] creating $venv"
  "$python" -m venv "$venv"
fi
# colcon must never crawl into this venv either.
touch "$venv/COLCON_IGNORE"

quiet() { "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }; }
stamp="$venv/.requirements.sha"
want="$(cat requirements-aloha.txt faster_core/setup.py | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup-aloha] installing pinned requirements-aloha.txt"
  quiet "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  # The file is the complete closure; --no-deps keeps gym-aloha from pulling mujoco 3 (see its header).
  quiet "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-aloha.txt
  # setuptools' editable-install banner is noise: keep the log, show it only on failure.
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e faster_core \
    >"$venv/editable-install.log" 2>&1 || { cat "$venv/editable-install.log"; exit 1; }
  echo "$want" >"$stamp"
fi

# Headless by default, as env.sh does for the main venv: MuJoCo picks its GL backend when first imported.
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo 'import os; os.environ.setdefault("MUJOCO_GL", "egl")' >"$site/faster_aloha_mujoco_gl.pth"

"$venv/bin/python" -c "import dm_control.rl.control, gym_aloha.tasks.sim, mujoco
import faster_core.data.sim.aloha as aloha
assert mujoco.__version__ == '2.3.7', mujoco.__version__
print('[setup-aloha] ready: mujoco', mujoco.__version__, '| tasks', ', '.join(aloha.TASKS))"
