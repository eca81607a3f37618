#!/usr/bin/env bash
# The benchmark grid of issue 8: peers {10, 50, 100} x block size {1 KiB,
# 100 KiB, 1 MiB}, 30 blocks at 5 blocks/s, profiles default, fabric and
# direct, each run in its own child process. Prints one line per run and
# writes bench-grid.json and bench-grid.svg in the current directory
# (override with OUT=prefix).
#
# The in-memory transport is the default here: it isolates the protocol
# from TLS and gRPC costs, and 1 MiB blocks to 100 gRPC peers in one
# process saturate a 2-core machine for every profile. TRANSPORT=grpc runs
# the grid over gRPC instead.
set -euo pipefail
out="${OUT:-$PWD/bench-grid}"
cd "$(dirname "$0")/.."
bin="$(mktemp -d)/blockgossip"
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" ./cmd/blockgossip
exec "$bin" bench --grid --transport "${TRANSPORT:-mem}" --json "$out.json" --plot "$out.svg" "$@"
