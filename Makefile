# btblocker — the two commands of the README's quick start:
#   make run    install what is missing, build (release), replay the bundled
#               capture through the real DPDK dataplane, print what it found
#   make test   install what is missing, then fmt check, clippy, rustdoc,
#               every test
#   make test-docker   the docker testbed end to end (minutes: builds images)
#   make bgp-demo      the BGP lab (BIRD route reflector + two gobgpd in
#               namespaces) left running for a demo; root (README "Out of band: BGP")
CARGO ?= cargo
RELEASE_BIN := target/release/btblocker

.PHONY: bgp-demo run test deps build check-config check-packaging test-docker fmt clippy doc unit-test clean

deps:
	@scripts/install-deps.sh

build: deps
	$(CARGO) build --release

run: build
	@rm -f target/demo-bans.jsonl
	$(RELEASE_BIN) run -c dpdk-config/demo.yaml

check-config: build
	@for f in dpdk-config/*.yaml; do $(RELEASE_BIN) check-config $$f || exit 1; done

# The systemd unit and the Vagrantfile cannot run here; check what can be checked:
# systemd-analyze verify (unit syntax, directives, the ExecStart binary) and
# ruby -c (Vagrantfile syntax), each only where the tool is installed.
check-packaging: build
	@unit=$$(mktemp -d)/btblocker.service; \
	sed 's|/usr/local/bin/btblocker|$(CURDIR)/$(RELEASE_BIN)|g' packaging/btblocker.service >$$unit; \
	if command -v systemd-analyze >/dev/null; then systemd-analyze verify $$unit && echo "packaging/btblocker.service: ok"; \
	else echo "check-packaging: no systemd-analyze, unit not checked"; fi; rm -rf $$(dirname $$unit)
	@if command -v ruby >/dev/null; then ruby -c Vagrantfile; else echo "check-packaging: no ruby, Vagrantfile not checked"; fi
	@bash -n scripts/provision-runtime.sh scripts/vagrant-provision.sh scripts/vagrant-send.sh scripts/lib-net.sh scripts/docker-testbed.sh

# The BGP lab of tests/bgp_lab.rs, left up as `demo`: BIRD 2 (route reflector,
# kernel blackholes, flow4/flow6 tables) and a gobgpd per box, each in its own
# network namespace on a private bridge. It prints the API sockets for a
# `bgp:` section and how to look; `scripts/bgp-lab.sh down demo` removes it.
bgp-demo: deps
	@scripts/bgp-lab.sh down demo
	@scripts/bgp-lab.sh up demo
	@scripts/bgp-lab.sh wait demo 60
	@scripts/bgp-lab.sh status demo
	@echo
	@echo "bgp-demo is up. Point a btblocker at box a:  bgp: {enabled: true, api_socket: $$(scripts/bgp-lab.sh dir demo)/a/gobgp.sock, local_asn: 65001, box_id: 1, next_hop_v4: 192.0.2.1, next_hop_v6: \"100::1\"}"
	@echo "or announce by hand:  scripts/bgp-lab.sh gobgp demo a global rib add 203.0.113.7/32 nexthop 192.0.2.1 community 65535:666,no-export"
	@echo "then look:            scripts/bgp-lab.sh birdc demo show route all;  ip -n demo-rtr route show type blackhole;  scripts/bgp-lab.sh gobgp demo b global rib"
	@echo "stop it:              scripts/bgp-lab.sh down demo"

# Outside `make test`: builds docker images and runs two containers (see README).
test-docker:
	scripts/docker-testbed.sh

fmt:
	$(CARGO) fmt --all -- --check

clippy: deps
	$(CARGO) clippy --all-targets --features bench -- -D warnings
	$(CARGO) clippy --no-default-features --all-targets -- -D warnings

# Rustdoc with warnings as errors, so a doc link to a renamed or moved item
# fails here instead of going stale. Private items included: this is an
# application, its docs are read by those who change it, and most links sit
# in private items' docs. Both builds, as for clippy: `app`, `dpdk` and the
# replay player exist only with DPDK, the stage-timing stubs only without.
doc: deps
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --document-private-items --features bench,stage-timing
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --document-private-items --no-default-features

test: deps fmt clippy doc check-config check-packaging
	$(CARGO) test --no-default-features
	$(CARGO) test --release

clean:
	$(CARGO) clean
