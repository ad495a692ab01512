#!/usr/bin/env bash
# Installs Pantau on a Debian 12 (bookworm) machine: system packages, then a virtualenv in .venv.
#   bash scripts/install.sh          what `pantau run` / `pantau demo` need
#   bash scripts/install.sh --test   plus what the test suite needs (Chromium, pytest, ...)
# Environment:
#   PYTHON=python3.12                interpreter for the venv (3.11 or newer)
#   PANTAU_TORCH_INDEX=<index-url>   install torch + torchvision from that wheel index first,
#                                    e.g. PyTorch's CPU-only index on sites without a GPU
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=0
[[ "${1:-}" == "--test" ]] && with_tests=1

apt_packages=(
  ffmpeg                                   # ffprobe/ffmpeg: demo clips, recording, clips
  python3-gi gir1.2-gst-rtsp-server-1.0    # the loopback RTSP server (GStreamer)
  gstreamer1.0-rtsp gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad
)
if (( with_tests )); then
  apt_packages+=(chromium)                 # browser tests of the wall page
  apt_packages+=(redis-server)             # RedisStreamBus tests start their own redis-server
  apt_packages+=(poppler-utils)            # pdftoppm: the weekly report PDF rendered to PNG
fi

missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  echo "install.sh: apt-get install ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

python=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$python" -m venv .venv
fi
pip=(.venv/bin/python -m pip install --disable-pip-version-check -q)
if [[ -n "${PANTAU_TORCH_INDEX:-}" ]]; then
  "${pip[@]}" torch torchvision --index-url "$PANTAU_TORCH_INDEX"
fi
if (( with_tests )); then
  "${pip[@]}" -e ".[test]"
else
  "${pip[@]}" -e .
fi
echo "install.sh: done ($(.venv/bin/python -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__)'))"
