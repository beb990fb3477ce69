# syntax=docker/dockerfile:1
# The Traverse image: a release build on Debian 12, run as non-root from a slim
# Debian 12 base (glibc and CA certificates; nothing else is added).
#
#   docker build -t <your-registry>/traverse-gateway/traverse:0.1.0 .
#
# The Helm chart (charts/traverse) runs it as `traverse run --config
# /etc/traverse/traverse.yaml` with a read-only root filesystem as user 65532.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
# pingora-core -> flate2 -> libz-ng-sys builds zlib-ng with cmake.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p traverse \
    && install -D -m 0755 target/release/traverse /out/traverse \
    && /out/traverse version

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 65532 traverse \
    && useradd --uid 65532 --gid 65532 --no-create-home --shell /usr/sbin/nologin traverse
COPY --from=build /out/traverse /usr/local/bin/traverse
# 65532:65532, as the chart's podSecurityContext.
USER 65532:65532
# web, the uplink entrypoint (children), the admin listener.
EXPOSE 8080 9443 9000
ENTRYPOINT ["/usr/local/bin/traverse"]
CMD ["run", "--config", "/etc/traverse/traverse.yaml"]
