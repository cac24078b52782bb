# Gatehouse: see README.md. Every target works on a fresh machine: the Go
# toolchain named in go.mod is fetched through the module proxy.
export GOTOOLCHAIN := go1.27.2
export GOWORK := off

BIN := $(CURDIR)/bin
GO ?= go
TEST_TIMEOUT ?= 30m
# Members the demo fleet starts beside the hub.
MEMBERS ?= 2

CONTROLLER_TOOLS_VERSION := v0.23.0

# What --version prints and gatehouse_build_info says (internal/version).
VERSION ?= $(shell git describe --tags --always --dirty --abbrev=12 2>/dev/null || echo devel)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X github.com/gatehouse-dev/gatehouse/internal/version.version=$(VERSION) -X github.com/gatehouse-dev/gatehouse/internal/version.revision=$(REVISION)

.PHONY: all tools build images test unit adversarial bench bench-proxy bench-scale soak fuzz lint generate verify-generate demo conformance lifecycle clean

all: build

## tools: build etcd, kube-apiserver, kube-controller-manager, kubectl, the
## cert-manager controller and helm into bin/ (skips what is already built at the pinned version)
tools:
	@BIN=$(BIN) bash test/tools/build.sh

## build: every binary under cmd/ into bin/
build:
	@mkdir -p $(BIN)
	@if [ -n "$$($(GO) list ./cmd/... 2>/dev/null)" ]; then $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...; else echo "build: no commands under cmd/ yet"; fi
	@if [ -x $(BIN)/gatehousectl ]; then ln -sf gatehousectl $(BIN)/kubectl-gatehouse; fi

## images: OCI images of the hub (gatehouse) and the proxy (gatehouse-proxy)
## for linux/amd64 and linux/arm64, without a container daemon (build/images):
## built from the commit IMAGES_COMMIT (default HEAD; uncommitted changes are
## not in them), the same commit giving the same digests. Writes an OCI layout
## and an archive per image to bin/images/ and prints the digests; push them
## with crane, skopeo or oras (docs/operators.md, "Images"). IMAGE_VERSION
## replaces the version (default: git describe of the commit)
IMAGES_COMMIT ?= HEAD
images:
	cd build && $(GO) run ./images -repo $(CURDIR) -commit $(IMAGES_COMMIT) -out $(BIN)/images $(if $(IMAGE_VERSION),-version $(IMAGE_VERSION))

## test: unit and integration tests (integration tests run real control planes from bin/),
## then the hub's and the proxies' rollouts and drains (make lifecycle)
test: tools
	$(GO) test -timeout $(TEST_TIMEOUT) ./...
	@$(MAKE) --no-print-directory lifecycle

## unit: the tests that need no control plane
unit:
	$(GO) test -short ./...

## adversarial: hostile clients and backends against the real proxy binary
## (test/adversarial, docs/adversarial.md); one line per case
adversarial:
	@$(GO) test -count=1 -v -timeout 5m ./test/adversarial/ > .adversarial.log 2>&1; status=$$?; \
		grep -E '^(PASS|FAIL|SKIP)  ' .adversarial.log; \
		if [ $$status -ne 0 ]; then grep -E '^(--- FAIL|FAIL|panic:)' .adversarial.log; echo "full output: .adversarial.log"; fi; exit $$status

## bench: the Go benchmarks of the hot paths (figures go to docs/benchmarks.md)
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count $(or $(COUNT),5) ./operator/translate/ ./dataplane/proxy/ ./policy/ ./policy/rego/

## bench-proxy: load comparison of gatehouse-proxy against nginx and HAProxy:
## HTTP/1.1 (wrk) at 1, 1,000 and 10,000 prefix + header routes with 1 and 2
## procs, HTTPS (wrk) and HTTP/2 (h2load, h2c and h2) at 1,000 routes, and
## L4: TCP and TLS passthrough (wrk through nginx stream, HAProxy mode tcp
## and our TCP/TLS listeners; kept-alive and a connection per exchange)
## (installs wrk, h2load, nginx with its stream module and haproxy from
## Debian when missing); BENCH_PROXY_FLAGS passes flags, e.g. -out FILE,
## -rounds 3, -procs 1, -haproxy=false, -tcp=false, -passthrough=false or
## -cpuprofile DIR (see test/bench/proxy/README.md)
bench-proxy:
	@bash test/bench/proxy/deps.sh
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/gatehouse-proxy ./cmd/gatehouse-proxy
	$(GO) build -o $(BIN)/bench-proxy ./test/bench/proxy
	$(BIN)/bench-proxy -proxy $(BIN)/gatehouse-proxy $(BENCH_PROXY_FLAGS)

## bench-scale: the hub at 3 members x 1,000 routes: time to statuses and to
## traffic, hub memory (not part of make test)
bench-scale: tools build
	$(GO) run ./test/bench/scale --bin $(BIN) --members $(or $(SCALE_MEMBERS),3) --routes $(or $(SCALE_ROUTES),1000)

## bench-churn: route propagation under churn: with CHURN_ROUTES (1,000) routes
## per member served, CHURN_CHANGES (100) adds, modifies and deletes one at a
## time in each of CHURN_MEMBERS (1) members at once, under traffic: apply →
## traffic and → Programmed, load errors, hub and proxy CPU and memory;
## CHURN_FLAGS passes more flags (see test/bench/churn/README.md)
bench-churn: tools build
	$(GO) run ./test/bench/churn --bin $(BIN) --members $(or $(CHURN_MEMBERS),1) --routes $(or $(CHURN_ROUTES),1000) --changes $(or $(CHURN_CHANGES),100) $(CHURN_FLAGS)

## soak: the hub and a proxy under route, listener and Gateway churn for
## SOAK_TIME (default 30m); fails when their memory grows (not part of make test)
SOAK_TIME ?= 30m
soak: tools
	SOAK_TIME=$(SOAK_TIME) $(GO) test -count 1 -timeout 0 -run TestSoak -v ./test/soak/

## fuzz: each fuzz target for FUZZTIME (default 5m)
FUZZTIME ?= 5m
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzTranslate -fuzztime $(FUZZTIME) ./operator/translate/
	$(GO) test -run '^$$' -fuzz FuzzReuse -fuzztime $(FUZZTIME) ./operator/translate/
	$(GO) test -run '^$$' -fuzz FuzzMatch -fuzztime $(FUZZTIME) ./dataplane/proxy/
	$(GO) test -run '^$$' -fuzz FuzzIsolation -fuzztime $(FUZZTIME) ./dataplane/proxy/
	$(GO) test -run '^$$' -fuzz FuzzFastPathMatchesNetHTTP -fuzztime $(FUZZTIME) ./dataplane/proxy/
	$(GO) test -run '^$$' -fuzz FuzzRequestHead -fuzztime $(FUZZTIME) ./dataplane/proxy/wire/
	$(GO) test -run '^$$' -fuzz FuzzResponseHead -fuzztime $(FUZZTIME) ./dataplane/proxy/wire/
	$(GO) test -run '^$$' -fuzz FuzzDecide -fuzztime $(FUZZTIME) ./policy/
	$(GO) test -run '^$$' -fuzz FuzzAttachmentAgreement -fuzztime $(FUZZTIME) ./operator/hub/
	$(GO) test -run '^$$' -fuzz FuzzRegexDialect -fuzztime $(FUZZTIME) ./dataplane/routetable/

## lint: formatting and go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt wants to change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd test/conformance && $(GO) vet ./...
	cd test/lifecycle && $(GO) vet ./...
	cd build && $(GO) vet ./...

## generate: protobuf Go code (protoc from Debian, protoc-gen-go at the version
## go.mod pins), then deepcopy and CRDs for our API types (controller-gen)
generate: $(BIN)/controller-gen $(BIN)/protoc-gen-go
	@command -v protoc >/dev/null || { echo "generate: installing protoc (Debian protobuf-compiler)"; apt-get install -y -qq protobuf-compiler >/dev/null; }
	PATH=$(BIN):$$PATH protoc --proto_path=. --go_out=. --go_opt=paths=source_relative $$(git ls-files --cached --others --exclude-standard '*.proto')
	@if [ -n "$$(git ls-files --cached --others --exclude-standard 'tenancy/api/*.go' 'policy/api/*.go')" ]; then \
		$(BIN)/controller-gen object paths=./tenancy/api/... paths=./policy/api/... && \
		$(BIN)/controller-gen crd paths=./tenancy/api/... paths=./policy/api/... output:crd:artifacts:config=charts/gatehouse/files/crds; \
	else echo "generate: no API types yet"; fi
	@# The charts carry the Gateway API standard CRDs of the version go.mod pins.
	@gwapi=$$($(GO) list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api) && for c in gatehouse gatehouse-member; do \
		rm -rf charts/$$c/files/gateway-api && install -D -m 0644 -t charts/$$c/files/gateway-api $$gwapi/config/crd/standard/*.yaml; done

## verify-generate: generated code matches its sources (what CI checks)
verify-generate: generate
	@git diff --exit-code -- '*.pb.go' '*zz_generated.deepcopy.go' 'charts/gatehouse/files/crds' 'charts/*/files/gateway-api' || { echo "generated code is stale: run 'make generate' and commit"; exit 1; }

$(BIN)/controller-gen:
	GOBIN=$(BIN) $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)

$(BIN)/protoc-gen-go: go.mod
	$(GO) build -o $@ google.golang.org/protobuf/cmd/protoc-gen-go

## demo: a hub and $(MEMBERS) member clusters, the hub, a proxy per member,
## a shared Gateway and two tenants' routes in each; prints a report, runs until Ctrl-C
demo:
	@[ -x $(BIN)/kube-apiserver ] || echo "demo: first run: building etcd, kube-apiserver, kube-controller-manager, kubectl and cert-manager from the Go module proxy (about 10 minutes; later runs take seconds)"
	@$(MAKE) --no-print-directory tools build
	@$(GO) build -o $(BIN)/demo ./test/env/cmd/demo
	$(BIN)/demo --bin $(BIN) --members $(MEMBERS) --dir $(CURDIR)/.demo

## conformance: the official Gateway API conformance suite (profiles
## GATEWAY-HTTP, -GRPC, -TLS, -TCP and -UDP) against the hub, a proxy per Gateway and the suite's echo
## backends on one local cluster; writes the report to test/conformance/reports/
## and prints a summary. Needs root (network namespaces). CONFORMANCE_FLAGS
## passes the suite's flags, e.g. -run-test=HTTPRouteSimpleSameNamespace
CONFORMANCE_ARTIFACTS ?= $(CURDIR)/.conformance
conformance: tools build
	cd test/conformance && $(GO) build -o $(BIN)/echo-basic sigs.k8s.io/gateway-api-conformance-images/echo-basic
	@rm -rf $(CONFORMANCE_ARTIFACTS)
	cd test/conformance && $(GO) test -count=1 ./kubelet/
	cd test/conformance && GATEHOUSE_BIN_DIR=$(BIN) CONFORMANCE_ARTIFACTS=$(CONFORMANCE_ARTIFACTS) \
		$(GO) test -count=1 -timeout 75m -run '^TestConformance$$' . -args $(CONFORMANCE_FLAGS) > $(CONFORMANCE_ARTIFACTS).log 2>&1; \
		status=$$?; cat $(CONFORMANCE_ARTIFACTS)/summary.txt 2>/dev/null || tail -50 $(CONFORMANCE_ARTIFACTS).log; \
		echo "full output: $(CONFORMANCE_ARTIFACTS).log, logs of each part: $(CONFORMANCE_ARTIFACTS)/"; exit $$status

## lifecycle: the hub chart with 2 replicas on a 2-node cluster (fake kubelet,
## kube-controller-manager): helm upgrade and a drain of the leader's node
## under load, 0 failed requests, status continuous, one active hub; then the
## member chart's 2 proxies there: rollout restart and a drain of a proxy's
## node under load, 0 failed requests, each proxy out of its Service's
## endpoints before SIGTERM. Needs root.
lifecycle: tools
	@cd test/lifecycle && $(GO) test -count=1 -v -timeout 10m . > $(CURDIR)/.lifecycle.log 2>&1; status=$$?; \
		grep -E '^(--- |    --- |ok|FAIL)|(lifecycle|proxyfleet|proxywatch)_test.go' $(CURDIR)/.lifecycle.log; echo "full output: .lifecycle.log"; exit $$status

clean:
	rm -rf $(BIN) .demo .conformance .conformance.log .adversarial.log .lifecycle.log
