# syntax=docker/dockerfile:1
# PulseGate's container image. Three stages on ONE base image:
#   deps     production node_modules. better-sqlite3 is a native addon: it is fetched prebuilt or
#            compiled here, against the same libc and Node version the runtime stage runs.
#   build    every dependency plus tsc: src/ -> dist/.
#   runtime  dist/, package.json, package-lock.json and the production node_modules, run as the
#            unprivileged `node` user, with the SQLite file on the /data volume.
# Build and run: docker build -t pulsegate . && docker run -p 127.0.0.1:8080:8080 -v pulsegate-data:/data \
#   --stop-timeout 40 pulsegate        (or: docker-compose up -d; see docs/RUNBOOK.md)

ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
# A toolchain for node-gyp, used only when no prebuilt better-sqlite3 binary fits this platform.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# tsc and vite need no native addon built here, so no install script runs
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
COPY console ./console
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    DATABASE_PATH=/data/pulsegate.db
# HOST=0.0.0.0 so the port can be published. A non-loopback HOST requires API authentication: give
# API_KEYS at run time, or create a key first (docker run ... node dist/cli/keys.js create --admin).
# Only behind a gateway that authenticates every caller, switch it off here or at run time:
# ENV AUTH_DISABLED=false
WORKDIR /app
# Application files stay owned by root: the service can read its code but not change it.
COPY package.json package-lock.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080
# Liveness only (/healthz); readiness (/readyz) is for load balancers and orchestrators.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# main.ts drains on SIGTERM for up to SHUTDOWN_TIMEOUT_MS (30 s): give `docker stop` more than that.
STOPSIGNAL SIGTERM
CMD ["node", "--max-semi-space-size=2", "--heap-growing-percent=50", "dist/main.js"]
