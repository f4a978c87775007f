# Build tags: go-ceph needs the Ceph release codename of the installed
# librbd/librados headers (Debian 12 ships Ceph 16.2 "pacific").
TAGS      ?= pacific
GO        ?= go
GOFLAGS_T := -tags $(TAGS)
BIN       := bin
# Tools installed with `go install` are pinned to module versions the Go
# module proxy serves and installed into bin/tools, never taken from PATH.
STATICCHECK_VERSION := v0.8.2
TOOLS     := $(CURDIR)/$(BIN)/tools

.PHONY: all deps build demo demo-memory test unit lint conformance conformance-rbd cluster-test bench fuzz clean

all: build

deps:
	@deploy/install-deps.sh

# build: every binary of the product into bin/.
CMDS := gateway/cmd/rbdgw gateway/cmd/rbdgw-admin gwcli/cmd/gwcli

build: deps
	@for c in $(CMDS); do echo "go build $$c"; $(GO) build $(GOFLAGS_T) -o $(BIN)/$$(basename $$c) ./$$c || exit 1; done

# demo: starts a two-gateway cluster (micro Ceph, etcd, gateways on
# 127.0.0.1:3260 and :3261) in the foreground and prints its URLs; Ctrl-C
# stops everything it started. demo-memory: one gateway, memory disk.
demo: build
	deploy/demo.sh

demo-memory: build
	deploy/demo.sh --memory

# demo-test: does with `make demo` what a user does and checks it: kills
# gw-a, writes and reads through gw-b, starts gw-a again with the command the
# demo printed, stops the demo with SIGTERM to its process group and finds
# nothing left (about 20 s a run; DEMO_TEST_RUNS=5 repeats it).
DEMO_TEST_RUNS ?= 1
.PHONY: demo-test
demo-test: build
	tests/demo/lifecycle.sh --runs $(DEMO_TEST_RUNS)

# observe-check: qemu-img bench on the demo LUN (deploy/demo.sh started and
# stopped by it) and what /metrics of both gateways and gwcli top report,
# side by side, and promtool check metrics on both outputs; fails beyond
# 10%. About 35 s, but it takes the demo's ports and compares rates in the
# middle of a run with qemu-img's average, which needs a machine with a
# steady load: not part of test. bench-metrics: a memory LUN with the
# counters off and on in one qemu-img run (deploy/bench).
.PHONY: observe-check bench-metrics
observe-check: build
	tests/observe/demo-check.sh

bench-metrics: build
	deploy/bench/metrics-cost.sh

# test: everything CI runs: format, vet, staticcheck, then, with a micro Ceph
# cluster on 127.0.0.1, the unit and end-to-end tests with the race detector
# and the libiscsi conformance suite against a memory LUN, an RBD LUN and a
# two-gateway cluster (RBD LUNs; first path through gw-a, second through gw-b).
test: build lint
	deploy/with-services.sh $(MAKE) --no-print-directory unit conformance conformance-rbd conformance-cluster
	$(MAKE) --no-print-directory demo-test DEMO_TEST_RUNS=1

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(GOFLAGS_T) ./...
	@test -x $(TOOLS)/staticcheck && $(TOOLS)/staticcheck -version | grep -q "($(STATICCHECK_VERSION:v%=%))" || \
		GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(TOOLS)/staticcheck $(GOFLAGS_T) ./...

# unit: needs CEPH_CONF for the librbd tests (they skip with a message
# without it); `make test` provides a cluster.
unit:
	$(GO) test $(GOFLAGS_T) -race -timeout 25m ./...

conformance:
	tests/conformance/run.sh

conformance-rbd:
	tests/conformance/run.sh --backend rbd

# conformance-cluster: the same suite against two gateways in cluster mode
# (an etcd server, gw-a and gw-b presenting one target; first path through
# gw-a, second through gw-b); micro Ceph unless CEPH_CONF is set. About
# 1.5 minutes.
.PHONY: conformance-cluster
conformance-cluster:
	tests/conformance/run.sh --cluster

# cluster-test: gateway processes against etcd and a micro Ceph cluster
# (started unless CEPH_CONF is set); about 2-3 minutes, 45 s of which is the
# etcd outage test (GOTESTFLAGS=-short skips it). `make unit` runs them too.
cluster-test:
	$(GO) test $(GOFLAGS_T) -count=1 -timeout 15m $(GOTESTFLAGS) -v ./gateway/e2e/cluster/

bench: build
	deploy/bench/run-all.sh

fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzReader -fuzztime=60s ./gateway/internal/pdu/
	$(GO) test -run='^$$' -fuzz=FuzzParseText -fuzztime=60s ./gateway/internal/login/

clean:
	rm -rf $(BIN)
