# casd: build, test, benchmark and package. `make help` lists the targets.
#
# Only Go (and, for `make test`, a C compiler for the race detector) is
# needed; the module's dependencies are fetched by the go command.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build
.DELETE_ON_ERROR:

GO      ?= go
GOFMT   ?= $(shell $(GO) env GOROOT)/bin/gofmt
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo 0.1.0-dev)
BIN     ?= bin/casd
IMAGE   ?= casd

# The release build: static, reproducible paths, version stamped. The
# Dockerfile runs the same command.
BUILD_FLAGS := -trimpath -ldflags "-X main.version=$(VERSION)"

TEST_TIMEOUT  ?= 45m
BENCH_TIMEOUT ?= 30m
BENCH_PKGS    ?= ./bench/ ./dag/ ./blockstore/ ./protocol/
BENCH_OUT     ?= bench.out
FUZZTIME      ?= 10s
# make test ends with every fuzz target run for a fixed number of inputs
# (a count, not a time: short timed runs on a loaded machine fail with
# "context deadline exceeded" in Go's fuzz coordinator).
TEST_FUZZTIME ?= 3000x
# The packages `make mutate` mutation-tests.
PKGS          ?= dag blockstore crypt protocol config

# Pinned tools, run with `go run pkg@version` so that they never enter the
# module graph of casd itself.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
# buf compiles protocol/pb/cas.proto for `make proto`; protoc-gen-go comes
# from go.mod (see protocol/pb/buf.gen.yaml).
BUF         ?= github.com/bufbuild/buf/cmd/buf@v1.75.0
# go-gremlins, `go install`ed into bin/tools by `make mutate`.
GREMLINS    ?= github.com/go-gremlins/gremlins/cmd/gremlins@v0.6.0
# The platforms casd must build for; `make cross` (part of `make test`)
# compiles ./cmd/casd for each.
PLATFORMS   ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64

.PHONY: build test fmt-check vet lint cross bench demo fuzz mutate proto docker clean help

## build: compile ./cmd/casd into bin/casd
build:
	CGO_ENABLED=0 $(GO) build $(BUILD_FLAGS) -o $(BIN) ./cmd/casd

## test: gofmt check, go vet, staticcheck, cross-compilation, every test
##       (integration included) under -race, then each fuzz target briefly
test: fmt-check vet lint cross
	@if [ "$$($(GO) env CGO_ENABLED)" != 1 ]; then \
		echo "make test: go test -race needs cgo and a C compiler (e.g. apt-get install gcc)" >&2; \
		exit 1; \
	fi
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	GO="$(GO)" bash scripts/fuzz.sh $(TEST_FUZZTIME)

## fmt-check: fail, listing them, if any Go files are not gofmt-formatted
fmt-check:
	@files="$$(find . -path ./.git -prune -o -name testdata -prune -o -name '*.go' -print0 | xargs -0 -r $(GOFMT) -l)"; \
	if [ -n "$$files" ]; then \
		echo "these files need gofmt -w:" >&2; \
		echo "$$files" >&2; \
		exit 1; \
	fi

## vet: go vet ./...
vet:
	$(GO) vet ./...

## lint: staticcheck (pinned) on every package
lint:
	$(GO) run $(STATICCHECK) ./...

## cross: compile ./cmd/casd for every platform in PLATFORMS
cross:
	@for p in $(PLATFORMS); do \
		echo "cross: $$p"; \
		CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build -o /dev/null ./cmd/casd; \
	done

## bench: benchmarks (limits, casd end to end, packages) into bench.out, then a summary
##        (CASD_BENCH_SIZE=256MiB for a quick run; CASD_BIN to use a built binary)
##        The summary is printed even when a benchmark fails; the exit status is go test's.
bench:
	@cmd="$(GO) test -run='^$$' -bench=. -benchmem -count=1 -timeout $(BENCH_TIMEOUT) $(BENCH_PKGS)"; \
	echo "$$cmd | tee $(BENCH_OUT)"; \
	status=0; eval "$$cmd" | tee $(BENCH_OUT) || status=$$?; \
	awk -f scripts/bench-summary.awk $(BENCH_OUT) || true; \
	exit $$status

## demo: build, then run scripts/demo.sh with CASD_BIN set to the binary
demo: build
	CASD_BIN="$(CURDIR)/$(BIN)" bash scripts/demo.sh

## fuzz: run every fuzz target for FUZZTIME (10s) each
fuzz:
	GO="$(GO)" bash scripts/fuzz.sh $(FUZZTIME)

## proto: regenerate protocol/pb/internal/wire from protocol/pb/cas.proto
##        (buf pinned, protoc-gen-go from go.mod), then show what changed
proto:
	cd protocol/pb && $(GO) run $(BUF) generate
	@git status --short -- protocol/pb/internal/wire

## mutate: mutation testing (go-gremlins) of PKGS, printing each package's test
##         efficacy and mutator coverage (WORKERS=2; MIN_EFFICACY=90 to gate)
mutate:
	GO="$(GO)" GREMLINS="$(GREMLINS)" bash scripts/mutate.sh $(PKGS)

## docker: build the container image casd (IMAGE=name to change)
docker:
	docker build --build-arg VERSION="$(VERSION)" -t $(IMAGE) .

## clean: remove build and benchmark outputs
clean:
	rm -rf bin $(BENCH_OUT)

## help: list the targets
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)
