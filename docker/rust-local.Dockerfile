# A local stand-in for rust:1-bookworm, for a docker engine that cannot pull
# images: the Debian base from scripts/docker-base-image.sh plus the Rust
# toolchain already installed on the host (rustc, cargo, the x86_64 std).
# Built by scripts/docker-rust-image.sh; the context is a copy of the host's
# toolchain sysroot, not the repository.
ARG BASE_IMAGE=btblocker/base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      ca-certificates gcc libc6-dev >/dev/null \
 && rm -rf /var/lib/apt/lists/*
COPY . /usr/local/rust/
ENV PATH=/usr/local/rust/bin:/usr/local/cargo/bin:$PATH \
    CARGO_HOME=/usr/local/cargo
RUN rustc --version && cargo --version
