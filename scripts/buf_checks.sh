#!/usr/bin/env bash
# buf lint, format and breaking-change checks over protos/, with the buf CLI pinned in
# package.json (@bufbuild/buf) and installed by `npm ci` into node_modules/.
#
# Breaking changes are checked against the protos of the previous commit (HEAD~1), or of the
# git ref in BUF_BREAKING_AGAINST (e.g. the main a submission started from). The check is
# skipped, saying why, when that commit is missing (a single-commit or shallow clone) or
# predates buf.yaml (nothing buf can build to compare with).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUF=node_modules/.bin/buf
if [[ ! -x "$BUF" ]]; then
  echo "buf_checks: installing the pinned buf CLI (npm ci)"
  npm ci --no-audit --no-fund
fi
echo "buf_checks: buf $("$BUF" --version)"

echo "buf_checks: buf lint"
"$BUF" lint

echo "buf_checks: buf format --diff --exit-code protos"
"$BUF" format protos --diff --exit-code

against="${BUF_BREAKING_AGAINST:-HEAD~1}"
if ! against_commit="$(git rev-parse --verify --quiet "${against}^{commit}")"; then
  echo "buf_checks: buf breaking skipped: no commit ${against} in this clone (first commit or shallow clone)"
  exit 0
fi
if ! git cat-file -e "${against_commit}:buf.yaml" 2>/dev/null; then
  echo "buf_checks: buf breaking skipped: ${against} (${against_commit:0:12}) has no buf.yaml"
  exit 0
fi

# Export the earlier tree with git itself rather than buf's `.git#ref=` input, so that
# worktrees (where .git is a file) and shallow clones behave like any other clone.
previous="$(mktemp -d)"
trap 'rm -rf "$previous"' EXIT
git archive "$against_commit" | tar -x -C "$previous"

echo "buf_checks: buf breaking against ${against} (${against_commit:0:12})"
"$BUF" breaking --against "$previous"
echo "buf_checks: all passed"
