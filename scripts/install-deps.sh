#!/usr/bin/env bash
# Installs the Debian packages Headlight builds and tests with, if any is missing.
# Idempotent: does nothing when everything is present.
set -euo pipefail

packages=(libopenblas-dev libhdf5-dev libgraphviz-dev hdf5-tools graphviz pkg-config python3 python3-pip python3-venv)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Headless Chromium renders reports to PNG in the report tests (optional elsewhere).
if [ "${HEADLIGHT_WITH_CHROMIUM:-0}" = 1 ]; then
  dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed" || missing+=(chromium)
fi

# OpenMPI runs the `mpirun -n 2 ... --mpi` scale-out test (skipped with a printed reason without it).
if [ "${HEADLIGHT_WITH_MPI:-0}" = 1 ]; then
  dpkg-query -W -f='${Status}' openmpi-bin 2>/dev/null | grep -q "install ok installed" || missing+=(openmpi-bin)
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    SUDO=sudo
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null; then
  if [ -x /opt/swift/usr/bin/swift ]; then
    echo "install-deps: swift is not on PATH; add /opt/swift/usr/bin to PATH" >&2
  else
    echo "install-deps: Swift 6 toolchain not found (expected swift on PATH or /opt/swift)" >&2
  fi
  exit 1
fi
for pc in openblas hdf5 libgvc; do
  pkg-config --exists "$pc" || { echo "install-deps: pkg-config cannot find $pc after install" >&2; exit 1; }
done
