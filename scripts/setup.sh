#!/usr/bin/env bash
# Set up spicecross on a Debian 12 or 13 machine: ngspice and libngspice from
# Debian's packages, a virtual environment in .venv (Python 3.11, or the system's
# python3 if it is newer), and the package.
# Safe to run again: each step is skipped when it is already done.
#
# Usage: bash scripts/setup.sh [--test-data]
#   --test-data   also install Debian's dataset-fashion-mnist (used by the tests)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo/.venv"
want_test_data=0
for arg in "$@"; do
    case "$arg" in
        --test-data) want_test_data=1 ;;
        *) echo "setup.sh: unknown option $arg (valid: --test-data)" >&2; exit 2 ;;
    esac
done

log() { printf '[setup] %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else echo "setup.sh: '$*' needs root; run as root or install sudo" >&2; exit 1
    fi
}

apt_updated=0
apt_install() {
    # Install the given Debian packages that are missing; update the lists only if needed.
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing Debian packages: ${missing[*]}"
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; then
        [ "$apt_updated" -eq 1 ] && return 1
        as_root apt-get update -q >/dev/null
        apt_updated=1
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
    fi
}

# 1. ngspice (program and shared library).
apt_install ngspice libngspice0
if [ "$want_test_data" -eq 1 ]; then
    sh "$repo/scripts/install-test-data.sh"
fi

# 2. Python: python3.11 where there is one. It is Debian 12's python3, and the
# torch 2.13.0 CPU wheel on this project's machines is built for it. Otherwise
# python3 if it is 3.11 or newer (Debian 13 has 3.13), and pip then takes
# torch 2.13.0 for that version (from PyPI: the CUDA build, which runs on the
# CPU). Both paths were run end to end, as README.md ("Versions") describes.
version_of() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }
python=""
if command -v python3.11 >/dev/null 2>&1 && [ "$(version_of python3.11)" = "3.11" ]; then
    python=$(command -v python3.11)
elif command -v python3 >/dev/null 2>&1 && python3 -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    python=$(command -v python3)
fi
if [ -z "$python" ]; then
    apt_install python3 python3-venv
    if python3 -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
        python=$(command -v python3)
    else
        echo "setup.sh: Python 3.11 or newer not found (python3 is $(python3 --version 2>&1)); install python3.11" >&2
        exit 1
    fi
fi
python_version=$(version_of "$python")

# 3. The virtual environment, made again when it has another Python version.
if [ ! -x "$venv/bin/python" ] || [ "$(version_of "$venv/bin/python")" != "$python_version" ]; then
    log "creating $venv with $python (Python $python_version)"
    rm -rf "$venv"
    if ! "$python" -m venv "$venv" 2>/dev/null; then
        apt_install python3-venv
        "$python" -m venv "$venv"
    fi
fi

# 4. Python packages, skipped when nothing they depend on has changed.
stamp="$venv/.spicecross-installed"
fingerprint=$(cat "$repo/setup.cfg" "$repo/pyproject.toml" "$repo/scripts/setup.sh" | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$fingerprint" ]; then
    log "installing Python packages into $venv"
    pip_log="$venv/pip-install.log"
    : > "$pip_log"
    pip_quiet() { "$venv/bin/python" -m pip install -q "$@" >>"$pip_log" 2>&1 || { cat "$pip_log" >&2; exit 1; }; }
    pip_quiet --upgrade pip
    # torch first and pinned to the release the project is tested with: pip takes the
    # CPU wheel where one lies on the machine's disk; a looser requirement could pull
    # a newer, much larger GPU build.
    pip_quiet torch==2.13.0
    pip_quiet numpy
    pip_quiet -e "$repo"
    "$venv/bin/python" -c 'import torch, PySpice, spicecross' || { echo "setup.sh: the Python install failed; see $pip_log" >&2; exit 1; }
    echo "$fingerprint" > "$stamp"
fi
log "ready: $("$venv/bin/spicecross" --version)"
