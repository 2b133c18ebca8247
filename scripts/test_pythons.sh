#!/usr/bin/env bash
# CI: execgate on every supported Python besides the main one (.venv, Python 3.11) that
# this machine has: for each, a fresh venv with the built wheel and its dev extras, the
# fast tests (`-m "not slow"`) from the checkout, and the release test (scripts/check_wheel.py)
# with that interpreter. Prints which versions it tested and which it could not.
# Usage: bash scripts/test_pythons.sh [VERSION ...]   (default: 3.12 3.13)
# EXECGATE_PYTHONS_PYTEST_ARGS replaces the test selection (default: -m "not slow").
set -euo pipefail
cd "$(dirname "$0")/.."
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(3.12 3.13)
# The main venv (with build and the checkout's launcher) builds the wheel and runs the checks.
main_python=${PY:-.venv/bin/python}

# A working pythonX.Y: on PATH, or installed by pyenv without being selected (its shim
# then exists but refuses to run). Looked for only: installing one needs the network.
find_python() {
    local version=$1 candidate
    local candidates=("python$version")
    if command -v pyenv >/dev/null 2>&1; then
        candidates+=("$(pyenv root)"/versions/"$version".*/bin/"python$version")
    fi
    for candidate in "${candidates[@]}"; do
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import ssl, sqlite3, venv, ctypes' >/dev/null 2>&1; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$main_python" -m build --outdir "$work/dist" . >"$work/build.log" 2>&1 \
    || { cat "$work/build.log"; exit 1; }
wheel=$(ls "$work"/dist/execgate-*-py3-none-any.whl)

tested=()
untested=()
for version in "${versions[@]}"; do
    if ! python=$(find_python "$version"); then
        untested+=("$version")
        continue
    fi
    printf '\n--- Python %s (%s)\n' "$version" "$("$python" -c 'import sys; print(sys.version.split()[0])')"
    started=$SECONDS
    venv="$work/venv-$version"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel[dev]"
    eval "set -- ${EXECGATE_PYTHONS_PYTEST_ARGS:--m 'not slow'}"
    "$venv/bin/python" -m pytest "$@" -q -p no:cacheprovider
    "$main_python" -m scripts.check_wheel --python "$python" --dist "$work/dist"
    tested+=("$version ($((SECONDS - started)) s)")
done

printf '\nPython versions tested besides 3.11 (tests and wheel check): %s\n' "${tested[*]:-none}"
if [ ${#untested[@]} -gt 0 ]; then
    printf 'could not test Python %s: no interpreter on this machine\n' "${untested[*]}"
fi
