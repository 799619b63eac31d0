# One image, several entry points: `ringpilot controller`, `ringpilot worker`, `ringpilot migrate`.
# Stage 1 builds the wheel; stage 2 installs it into a slim runtime that runs as a non-root user.
# No extras: the embedded PostgreSQL and Redis (`ringpilot[embedded]`) are for `ringpilot dev` and tests;
# in a cluster RINGPILOT_DATABASE_URL and RINGPILOT_REDIS_URL point at real servers.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY controller ./controller
COPY agent ./agent
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --uid 10001 --create-home ringpilot
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 10001
ENV RINGPILOT_LOG_FORMAT=json PYTHONUNBUFFERED=1
EXPOSE 8081
ENTRYPOINT ["ringpilot"]
CMD ["controller"]
