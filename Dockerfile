# One image for every component: `ringpilot controller`, `ringpilot worker`, `ringpilot gateway`, `ringpilot migrate`.
#
# Build (from the repository root; the one command):
#     docker build -t ringpilot:0.1.0 .
#
# Stage 1 builds the wheel; stage 2 installs it, without extras, into a slim runtime: the dev kit's
# embedded PostgreSQL and Redis (`ringpilot[embedded]`) are for `ringpilot dev` and tests, and in a
# cluster RINGPILOT_DATABASE_URL and RINGPILOT_REDIS_URL point at real servers. The runtime runs as
# user 10001 and works on a read-only root filesystem: bytecode is compiled at build time, and a process
# writes only to /tmp and /var/lib/ringpilot (emptyDir volumes in charts/ringpilot).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY controller ./controller
COPY agent ./agent
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
LABEL org.opencontainers.image.title="ringpilot" \
      org.opencontainers.image.description="Ringpilot controller, workers, gateway and migrations" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --gid 10001 ringpilot \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/ringpilot --shell /usr/sbin/nologin ringpilot \
    && install -d -o 10001 -g 10001 /var/lib/ringpilot
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl \
    && rm -rf /wheels \
    && python -m compileall -q "$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/ringpilot \
    TMPDIR=/tmp \
    RINGPILOT_DATA_DIR=/var/lib/ringpilot \
    RINGPILOT_LOG_FORMAT=json
WORKDIR /var/lib/ringpilot
USER 10001:10001
# 8081 /healthz, 9090 controller metrics, 9443 admission webhooks, 9191 worker metrics, 8080 gateway
EXPOSE 8081 9090 9443 9191 8080
ENTRYPOINT ["ringpilot"]
CMD ["controller"]
