#!/bin/sh
# Install Debian's dataset-fashion-mnist package, which the tests marked
# "dataset" read from /usr/share/datasets/fashion-mnist.
#
# Run it as root: sh scripts/install-test-data.sh
# It does nothing when the package is already installed, and runs
# 'apt-get update' only when apt does not know the package or the install
# fails with the current package lists.

set -eu

package=dataset-fashion-mnist

if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    echo "$package is already installed"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: apt-get not found, but $package is a Debian package. On another system, copy" \
         "the four Fashion-MNIST IDX files into a folder and pass it with --data-dir" >&2
    exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "error: installing $package needs root, so run this script as root" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
updated=no

# apt-cache prints an empty candidate, or "(none)", until the lists are fetched.
candidate=$(apt-cache policy "$package" 2>/dev/null | awk '/Candidate:/ { print $2 }')
if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
    echo "apt does not know $package yet; running apt-get update"
    apt-get update
    updated=yes
fi

if ! apt-get install -y --no-install-recommends "$package"; then
    if [ "$updated" = yes ]; then
        echo "error: apt-get install $package failed" >&2
        exit 1
    fi
    # Stale lists can name a version the mirror no longer has.
    echo "apt-get install failed; running apt-get update and trying once more"
    apt-get update
    apt-get install -y --no-install-recommends "$package"
fi
