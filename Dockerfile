# logredact: a static binary in an otherwise empty image, running as non-root.
#   docker build -t logredact .
#   docker run -i --rm logredact < app.log

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
# A fully static executable: no libc is needed in the final stage.
ENV RUSTFLAGS="-C target-feature=+crt-static"
RUN cargo build --release --locked --target x86_64-unknown-linux-gnu \
    && cp target/x86_64-unknown-linux-gnu/release/logredact /logredact

FROM scratch
LABEL org.opencontainers.image.title="logredact" \
      org.opencontainers.image.description="Streaming log-redaction sidecar: masks Databricks personal access tokens in log streams" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /logredact /usr/local/bin/logredact
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/logredact"]
