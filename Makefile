# tandem — make targets. `make test` is what CI runs (via .ci/run).
GO ?= go
PKGS := ./...

.PHONY: test test-race test-full lint bench fuzz build

build:
	$(GO) build -o bin/tandem ./cmd/tandem

# test: vet and format check, the whole suite under the race detector (large
# bodies are scaled down there), then the large-body, memory and allocation
# tests without it (-race allocates), then a short fuzz pass on every parser.
# The short pass counts executions, not seconds: with a duration, Go 1.26's
# fuzz coordinator can fail a clean run with "context deadline exceeded" when
# the time runs out mid-input on a loaded machine (go.dev/issue/75804, fixed
# in Go 1.27); a count has no deadline to race.
test: lint
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(GO) test -count=1 -timeout 20m -run 'Large|Memory|ServedBytes|SIGTERM|Allocs' ./proxy/ ./e2e/ ./internal/rawconn/
	$(MAKE) fuzz FUZZTIME=50000x

# lint leaves third_party/ to its upstream's formatting (go vet's ./... never
# reaches it: each tree there has its own go.mod) and checks instead that
# third_party/fasthttp is still the pristine release plus third_party/patches.
lint:
	@fmt=$$(gofmt -l $$(git ls-files '*.go' ':!:third_party' 2>/dev/null || find . -name '*.go' -not -path './third_party/*')); \
	if [ -n "$$fmt" ]; then echo "gofmt needed:"; echo "$$fmt"; exit 1; fi
	bash third_party/apply-patches.sh --check
	$(GO) vet $(PKGS)

FUZZTIME ?= 60s
fuzz:
	@set -e; for spec in $$($(GO) run ./internal/tools/fuzzlist); do \
		pkg=$${spec%%:*}; name=$${spec##*:}; \
		echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=10s $$pkg; \
	done

bench:
	$(GO) test -run='^$$' -bench=. -benchmem -count=1 $(PKGS)
	GO=$(GO) bash bench/run.sh

# soak: the binary under steady paced load with a faulty shadow for
# SOAK_DURATION (default 10m); checks goroutines, fds, RSS and upstream
# connections stay flat and that the counters reconcile. Not part of `test`.
SOAK_DURATION ?= 10m
.PHONY: soak
soak:
	SOAK_DURATION=$(SOAK_DURATION) $(GO) test -tags soak -run TestSoak -count=1 -v -timeout 30m ./e2e/
