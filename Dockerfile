# kyso in an image: the same setup as `scripts/run` (scripts/bootstrap), on a slim base,
# served by an unprivileged user, with its state in a volume.
FROM debian:bookworm-slim
WORKDIR /opt/kyso
COPY . .
RUN ./scripts/bootstrap && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/kyso --create-home --shell /usr/sbin/nologin kyso \
 && mkdir -p /var/lib/kyso && chown kyso:kyso /var/lib/kyso
ENV KYSO_DATA_DIR=/var/lib/kyso \
    KYSO_PKCS11_MODULE=/usr/lib/softhsm/libsofthsm2.so \
    PATH=/opt/kyso/.venv/bin:$PATH
# The database (SQLite), the dev API keys and generated state; use PostgreSQL in production.
VOLUME ["/var/lib/kyso"]
USER kyso
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/opt/kyso/scripts/healthcheck", "http://127.0.0.1:8080/healthz"]
# Set KYSO_CONFIG to a production configuration (PostgreSQL, your keys, your TSA); a [[keys]]
# entry may name its PKCS#11 module as module = "${KYSO_PKCS11_MODULE}".
CMD ["kyso", "serve", "--host", "0.0.0.0", "--port", "8080", "--workers", "2"]
