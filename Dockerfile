# logredact's container image: the static binary, its default configuration
# and the rule packs in an otherwise empty image, running as a non-root user.
#
#   docker build -t logredact:0.1.0 .
#   docker run -i --rm logredact:0.1.0 < app.log
#
# The final stage is checked without a container engine by
# tests/deploy/image.rs, which builds the binary the same way, lays out a
# directory with exactly what the final stage's COPY lines copy and runs it
# there with chroot, as user 65532.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# .cargo/config.toml defines `cargo static`, the fully static release build.
COPY .cargo ./.cargo
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
# The default configuration is built into the binary.
COPY config ./config
# `cargo static`: a fully static executable (glibc linked in), so the final
# stage needs no libc, no loader and no shell. RUSTFLAGS must stay unset here:
# it would replace the alias's flags.
RUN cargo static --locked \
    && cp target/x86_64-unknown-linux-gnu/release/logredact /logredact

FROM scratch
# Image metadata: set SOURCE_URL to the repository's address when publishing
# (docker build --build-arg SOURCE_URL=...); VERSION follows Cargo.toml.
ARG VERSION=0.1.0
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="logredact" \
      org.opencontainers.image.description="Streaming log-redaction sidecar: masks Databricks personal access tokens in log streams" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /logredact /usr/local/bin/logredact
# The default configuration, the configuration for logs carried as JSON, and
# the rule packs beside them, so that `include: [rules/...]` works from a
# configuration in /etc/logredact.
COPY config/logredact.yaml config/logredact-json.yaml /etc/logredact/
COPY config/rules/ /etc/logredact/rules/
# A fixed non-root user with no entry in /etc/passwd (the image has none).
USER 65532:65532
# The admin endpoint (/healthz, /readyz, /metrics) when --admin 0.0.0.0:9102.
EXPOSE 9102
ENTRYPOINT ["/usr/local/bin/logredact"]
CMD ["--config", "/etc/logredact/logredact.yaml"]
