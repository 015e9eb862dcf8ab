# btblocker — the two commands of the README's quick start:
#   make run    install what is missing, build (release), replay the bundled
#               capture through the real DPDK dataplane, print what it found
#   make test   install what is missing, then fmt check, clippy, every test
CARGO ?= cargo
RELEASE_BIN := target/release/btblocker

.PHONY: run test deps build check-config fmt clippy unit-test clean

deps:
	@scripts/install-deps.sh

build: deps
	$(CARGO) build --release

run: build
	@rm -f target/demo-bans.jsonl
	$(RELEASE_BIN) run -c dpdk-config/demo.yaml

check-config: build
	@for f in dpdk-config/*.yaml; do $(RELEASE_BIN) check-config $$f || exit 1; done

fmt:
	$(CARGO) fmt --all -- --check

clippy: deps
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --no-default-features --all-targets -- -D warnings

test: deps fmt clippy
	$(CARGO) test --no-default-features
	$(CARGO) test --release

clean:
	$(CARGO) clean
