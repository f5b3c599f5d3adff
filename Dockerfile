# syntax=docker/dockerfile:1
#
# reclaimd image: one binary that serves (`serve`), seeds (`seed`) and drives load (`load`).
# Build: docker build -t reclaimd:local .   (docker compose builds it for you)

# --- build stage: the full Rust toolchain, thrown away afterwards -------------------------
# The toolchain matches the one Cargo.lock is resolved with; bookworm matches the runtime's glibc.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the crates.io index and compiled dependencies between builds, so a source
# change rebuilds only this workspace's crates. No default features: the image leaves out the
# MongoDB test double that `reclaimd demo` starts when run from a checkout.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --no-default-features --bin reclaimd \
 && install -D -m 0755 target/release/reclaimd /out/reclaimd

# --- runtime stage: slim Debian, the binary, a non-root user ------------------------------
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 reclaimd \
 && useradd --system --uid 10001 --gid reclaimd --home-dir /app --shell /usr/sbin/nologin reclaimd \
 && mkdir -p /app /etc/reclaimd \
 # The CLI's default config path is `config/reclaimd.toml`, relative to the working directory:
 # point it at /etc/reclaimd, where compose mounts ./config, so every subcommand finds it.
 && ln -s /etc/reclaimd /app/config
COPY --from=build /out/reclaimd /usr/local/bin/reclaimd
# The annotated example config, so the image also runs without a mount; compose mounts ./config
# over it (read-only) so that editing the file on the host flips the mode live.
COPY config/ /etc/reclaimd/
WORKDIR /app
USER reclaimd:reclaimd

# Inside a container the listeners must accept connections from other containers.
ENV RECLAIMD_SERVER__LISTEN=0.0.0.0:8080 \
    RECLAIMD_ADMIN__LISTEN=0.0.0.0:9464 \
    RUST_LOG=info
EXPOSE 8080 9464

# Healthy = the admin listener answers /readyz with 200 (the daemon is up and MongoDB is
# reachable). Bash's /dev/tcp keeps curl out of the image.
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=5 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9464 && printf 'GET /readyz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

ENTRYPOINT ["reclaimd"]
CMD ["serve", "--config", "/etc/reclaimd/reclaimd.toml"]
