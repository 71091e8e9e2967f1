# Doris Manager build, run and test.
GO             ?= go
GOOS           ?= $(shell $(GO) env GOOS)
GOARCH         ?= $(shell $(GO) env GOARCH)
# The one version of the manager, the agent and the plugins' builds: git
# describe of this checkout (a tag, commits since, hash, -dirty), dev
# outside a git checkout. GOFLAGS below turns the toolchain's own VCS
# stamping off, so the version goes in with -X.
VERSION        ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT         ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
PLUGIN_VERSION ?= 1.0.0
PLUGIN_API     ?= 2.0
ROLES          := fe be broker
BIN            := bin
TEST_TIMEOUT   ?= 20m
# Tests marked t.Parallel run this many at once; the end-to-end tests spend
# most of their time waiting on processes, so more than the cores pays off.
TEST_PARALLEL  ?= 4
SERVE_FLAGS    ?=
DATA_DIR       ?= data
# The development key `make build` signs the plugins with (made once, 0600);
# `make run` trusts its public key in DATA_DIR. Release builds are signed
# with the publisher's own key instead (dorismanager plugins sign).
DEV_KEY        := $(BIN)/dev-plugin-key
# Once, not at every use (these are shell calls).
VERSION        := $(VERSION)
COMMIT         := $(COMMIT)
STAMP          := -X github.com/dorismanager/dorismanager/internal/buildinfo.version=$(VERSION) \
                  -X github.com/dorismanager/dorismanager/internal/buildinfo.commit=$(COMMIT)

export GOFLAGS := -buildvcs=false
SHELL := /bin/bash

.PHONY: all build run test vet fmt tidy clean proto

# Go modules of this repository; vet, test and tidy run in each. The plugin
# SDK (required by the root module through a replace), the Doris
# simulator's MySQL server (its libraries stay out of the manager's module)
# and the example third-party role, built from the SDK alone.
MODULES        := . sdk test/dorissim/server examples/exporter tools/packaging
# Agent architectures the manager carries (core/preflight.AgentArches):
# bin/agents/linux-<arch>/doris-agent, the one matching a host's uname -m
# is installed there.
AGENT_ARCHES   := amd64 arm64
# make package writes the .deb and .rpm packages here (tools/packaging).
DIST           ?= dist

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(STAMP)" -o $(BIN)/dorismanager ./cmd/dorismanager
	@if [ -d ./cmd/doris-agent ]; then \
		echo "$(GO) build -o $(BIN)/doris-agent ./cmd/doris-agent"; \
		CGO_ENABLED=0 $(GO) build -ldflags "-s -w $(STAMP)" -o $(BIN)/doris-agent ./cmd/doris-agent || exit 1; \
	fi
	@for arch in $(AGENT_ARCHES); do \
		echo "GOOS=linux GOARCH=$$arch $(GO) build -o $(BIN)/agents/linux-$$arch/doris-agent ./cmd/doris-agent"; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -ldflags "-s -w $(STAMP)" -o $(BIN)/agents/linux-$$arch/doris-agent ./cmd/doris-agent || exit 1; \
	done
	@[ -f $(DEV_KEY) ] || ./$(BIN)/dorismanager plugins keygen $(DEV_KEY)
	@for role in $(ROLES); do \
		[ -d ./plugins/$$role ] || continue; \
		[ "$$($(GO) list -f '{{.Name}}' ./plugins/$$role 2>/dev/null)" = main ] || continue; \
		name=doris-role-$${role}_v$(PLUGIN_VERSION)_x$(PLUGIN_API)_$(GOOS)_$(GOARCH); \
		dir=$(BIN)/plugins/$$role; mkdir -p $$dir; \
		echo "$(GO) build -o $$dir/$$name ./plugins/$$role"; \
		$(GO) build -ldflags "-X main.version=$(PLUGIN_VERSION) $(STAMP)" -o $$dir/$$name ./plugins/$$role || exit 1; \
		./$(BIN)/dorismanager plugins sign --key $(DEV_KEY) $$dir/$$name >/dev/null || exit 1; \
	done

run: build
	./$(BIN)/dorismanager plugins --data-dir $(DATA_DIR) trust $(DEV_KEY).pub
	./$(BIN)/dorismanager serve --data-dir $(DATA_DIR) $(SERVE_FLAGS)

vet:
	@for m in $(MODULES); do echo "(cd $$m && $(GO) vet ./...)"; (cd $$m && $(GO) vet ./...) || exit 1; done

# testreport prints each package's result, the output of failed tests, the
# slowest tests and a closing count; it fails when anything failed.
test: build vet
	$(GO) build -o $(BIN)/testreport ./test/testreport
	set -o pipefail; { rc=0; for m in $(MODULES); do \
		(cd $$m && $(GO) test -race -count=1 -parallel $(TEST_PARALLEL) -timeout $(TEST_TIMEOUT) -json ./...) || rc=1; \
	done; exit $$rc; } 2>&1 | ./$(BIN)/testreport

# The .deb and .rpm packages of the manager and of the agent (one per
# architecture) from bin/, into $(DIST); see README "Install from packages".
.PHONY: package
package: build
	$(GO) build -C tools/packaging -o $(abspath $(BIN))/packaging .
	./$(BIN)/packaging --bin $(BIN) --out $(DIST) --version $(VERSION) --plugin-key $(DEV_KEY).pub

# Regenerates the plugin wire code (committed) with pinned protoc plugins.
proto:
	sdk/proto/gen.sh

fmt:
	gofmt -w $$(find . -name '*.go' -not -path './.git/*')

tidy:
	@for m in $(MODULES); do echo "(cd $$m && $(GO) mod tidy)"; (cd $$m && $(GO) mod tidy) || exit 1; done

clean:
	rm -rf $(BIN)
	rm -rf $(DIST)

# The demo (root: network namespaces): three sandbox hosts, the whole
# wizard, and a running cluster and manager left for you; demo-down removes it.
.PHONY: demo demo-down
demo:
	@if [ "$$(id -u)" != 0 ]; then echo "make demo needs root (network namespaces, a bridge, an sshd per host): run sudo make demo" >&2; exit 1; fi
	@$(MAKE) --no-print-directory build
	$(GO) build -o $(BIN)/demo ./test/demo
	./$(BIN)/demo up --bin $(BIN)

demo-down:
	@if [ "$$(id -u)" != 0 ]; then echo "make demo-down needs root: run sudo make demo-down" >&2; exit 1; fi
	$(GO) build -o $(BIN)/demo ./test/demo
	./$(BIN)/demo down

# The load benchmark of BENCHMARKS.md ("Many agents"): simulated agents
# against managers built from this tree, on PostgreSQL (two managers too)
# and SQLite. Not part of test; see test/loadgen/bench_test.go for the
# LOADGEN_* settings (the defaults take about half an hour).
.PHONY: loadbench
loadbench:
	$(GO) test -tags loadbench -run TestLoad -timeout 0 -count=1 -v ./test/loadgen
