# kyso: the same setup as `scripts/run` (scripts/bootstrap), in an image.
FROM debian:bookworm-slim
WORKDIR /opt/kyso
COPY . .
RUN ./scripts/bootstrap && rm -rf /var/lib/apt/lists/*
ENV KYSO_DATA_DIR=/var/lib/kyso
EXPOSE 8080
# Set KYSO_CONFIG to a production configuration (PostgreSQL, your keys, your TSA).
CMD [".venv/bin/kyso", "serve", "--host", "0.0.0.0", "--port", "8080", "--workers", "2"]
