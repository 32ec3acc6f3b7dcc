# usage-gateway: `docker build -t usage-gateway .`, then `docker run -p 8000:8000 -e USAGE_GATEWAY_... usage-gateway`.
#
# The base image is pinned by tag and by digest: python:3.11.16-slim-bookworm, whose multi-platform index
# digest is the one docker-library/repo-info lists for python:3.11-slim-bookworm (Python 3.11.16) at
# commit 33a22f41ac7bf613bc03380b0317536a9a7fb5e8 (repos/python/remote/3.11-slim-bookworm.md). With a
# digest the tag is only a label: bump both together.
ARG PYTHON_IMAGE=python:3.11.16-slim-bookworm@sha256:0bee7276f83efd4a1ee05bbbf4281d95ed28e079220a9457f25a93e3f1e3c31b
# node:22.23.2-bookworm-slim, the digest repo-info lists for node:22-bookworm-slim at commit
# d45a2996653182e785789cd05d5d234bd0b5c927 (repos/node/remote/22-bookworm-slim.md). Only a build stage.
ARG NODE_IMAGE=node:22.23.2-bookworm-slim@sha256:f576cc608b02e6b04bb0700e13be83eb5ceb7bb24584c3181b0f4ecfa0cd0edf

# Stage 1: the browser files (GraphiQL, the dashboard's Chart.js), from web/'s npm lockfile
# (--ignore-scripts: no package runs code; --omit=dev: axe-core is for the tests only).
FROM ${NODE_IMAGE} AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error

# Stage 2: a wheel of the package and a wheel of every dependency, at the versions pyproject.toml pins.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY . .
RUN pip wheel --wheel-dir /wheels .

# Stage 3: the runtime, without the source tree, node, the build tools or pip's cache. Of the npm packages
# only the files the gateway serves are copied (server/web_assets.py's copy_assets).
FROM ${PYTHON_IMAGE}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    --mount=type=bind,from=web,source=/web/node_modules,target=/tmp/node_modules \
    pip install --no-index --find-links /wheels usage-gateway \
    && python -c "from pathlib import Path; from usage_gateway.server.web_assets import copy_assets; copy_assets(Path('/tmp/node_modules'), Path('/usr/share/usage-gateway/web'))" \
    && groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --home-dir /var/lib/usage-gateway --no-create-home gateway \
    && mkdir -p /var/lib/usage-gateway/exports \
    && chown -R gateway:gateway /var/lib/usage-gateway

# Listen on every interface of the container (the default, 127.0.0.1, is unreachable from outside it);
# export files go to a directory the gateway user owns (mount a volume there); GraphiQL (GRAPHIQL=true)
# finds its files where the runtime stage copied them. Migrations run at start
# only when USAGE_GATEWAY_MIGRATE_ON_START=true is given (docker-compose.yml gives it).
ENV USAGE_GATEWAY_HOST=0.0.0.0 \
    USAGE_GATEWAY_PORT=8000 \
    USAGE_GATEWAY_EXPORT_DIR=/var/lib/usage-gateway/exports \
    USAGE_GATEWAY_WEB_ASSETS_DIR=/usr/share/usage-gateway/web \
    USAGE_GATEWAY_LOG_FORMAT=json
WORKDIR /var/lib/usage-gateway
USER 10001:10001
EXPOSE 8000
VOLUME ["/var/lib/usage-gateway/exports"]

# Ready when Postgres, Redis (if set) and LiteLLM (if set) answer: /readyz is 503 otherwise, and urlopen
# raises on it. The slim image has no curl; Python's standard library does the request.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('USAGE_GATEWAY_PORT', '8000') + '/readyz', timeout=4)"]

# `docker run IMAGE` serves; `docker run IMAGE migrate` (or sync-directory, token, …) runs another command.
# --wait-for-database: a container started beside its Postgres retries for a minute instead of exiting.
ENTRYPOINT ["usage-gateway"]
CMD ["serve", "--wait-for-database", "60"]
