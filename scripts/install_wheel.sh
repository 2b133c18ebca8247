#!/bin/sh
# Install execgate from a built wheel with the `python` first on PATH, from binary wheels
# only: the one install step of the container image (Dockerfile) and of the release test
# (scripts/check_wheel.py), so that the test runs exactly what the image does.
# Usage: sh scripts/install_wheel.sh DIST_DIR
set -eu
dist=${1:?usage: install_wheel.sh DIST_DIR}
set -- "$dist"/execgate-*-py3-none-any.whl
if [ "$#" -ne 1 ] || [ ! -f "$1" ]; then
    echo "install_wheel.sh: expected exactly one execgate wheel in $dist" >&2
    exit 1
fi
# --only-binary: every dependency must come as a wheel for this Python and platform, so
# the image's final stage never needs a compiler.
python -m pip install --no-cache-dir --disable-pip-version-check --only-binary=:all: "$1"
