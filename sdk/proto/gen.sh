#!/bin/sh
# Regenerates the Go code of the plugin wire from role.proto with the pinned
# protoc plugins. Run from anywhere; needs protoc (Debian protobuf-compiler).
set -eu
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.5.1

dir=$(cd "$(dirname "$0")" && pwd)
gobin=$(go env GOPATH)/bin

have() { # have BINARY VERSION: is BINARY at exactly VERSION?
	[ -x "$gobin/$1" ] && "$gobin/$1" --version 2>/dev/null | grep -q " ${2#v}\$\| $2\$"
}
have protoc-gen-go "$PROTOC_GEN_GO_VERSION" ||
	go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
have protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION" ||
	go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"

cd "$dir"
PATH="$gobin:$PATH" protoc -I . \
	--go_out=. --go_opt=paths=source_relative \
	--go-grpc_out=. --go-grpc_opt=paths=source_relative \
	role.proto
