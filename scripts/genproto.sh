#!/usr/bin/env bash
# Regenerates the Go code in protos/ from the .proto files beside it.
# Pinned tool versions, so that the committed output is reproducible; CI
# does not run this (the generated code is committed).
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOC_GEN_GO=v1.36.12
PROTOC_GEN_GO_GRPC=v1.6.0
PROTOC_WANT="libprotoc 3.21.12" # Debian bookworm's protobuf-compiler

if ! command -v protoc >/dev/null; then
  echo "protoc not found: apt-get install protobuf-compiler" >&2
  exit 1
fi
have=$(protoc --version)
[ "$have" = "$PROTOC_WANT" ] || echo "warning: $have, expected $PROTOC_WANT; output may differ" >&2

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
GOBIN=$bin go install google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO
GOBIN=$bin go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC

PATH=$bin:$PATH protoc -I protos \
  --go_out=protos --go_opt=paths=source_relative \
  --go-grpc_out=protos --go-grpc_opt=paths=source_relative \
  protos/*.proto
echo "regenerated: $(ls protos/*.pb.go | tr '\n' ' ')"
