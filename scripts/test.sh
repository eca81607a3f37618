#!/usr/bin/env bash
# The project's test command (README.md and .ci/run call it): every package
# with the race detector, including the multi-process suite in tests/.
set -euo pipefail
cd "$(dirname "$0")/.."
exec go test -race -timeout 25m -count=1 "$@" ./...
