#!/usr/bin/env bash
# Create .venv/ at the repository root with everything dmil_ros needs, and install the package.
# Safe to re-run: an up-to-date environment is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first, spelled exactly, so nothing else can pull a CUDA build in.
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -r requirements.txt
.venv/bin/python -m pip install --quiet --no-deps -e .
.venv/bin/python -c "import rclpy, torch, metaworld, dmil_ros; print('dmil_ros environment ready:', torch.__version__)"
