# The image Airbyte runs: `docker build -t airbyte/source-stripe-rs:dev .`
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p source-stripe && strip target/release/source-stripe

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/source-stripe /usr/local/bin/source-stripe
ENV AIRBYTE_ENTRYPOINT="/usr/local/bin/source-stripe"
ENTRYPOINT ["/usr/local/bin/source-stripe"]
LABEL io.airbyte.name=airbyte/source-stripe-rs
LABEL io.airbyte.version=0.1.0
