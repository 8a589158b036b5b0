# wharf: a pull-through cache for container registries.
#   docker build -t wharf .
#   docker run -p 5000:5000 -v wharf-data:/var/lib/wharf wharf
# The image holds the runtime, the production dependencies and the JavaScript built from the
# sources (running the .ts files directly would cost ~30 MB more memory per process).

FROM node:24-bookworm-slim AS build
# The native addons (native/: sendfile, hash thread, memory trim) are compiled against the image's own Node headers.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
ENV npm_config_nodedir=/usr/local
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY scripts/build-dist.ts ./scripts/build-dist.ts
COPY src ./src
COPY native ./native
RUN npm run build:native && test -f native/build/Release/sendfile.node && test -f native/build/Release/hash.node && test -f native/build/Release/memory.node
RUN npm ci --ignore-scripts --no-audit --no-fund && npm run build

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only; the `node` devDependency (Node 24 for npm scripts on older
# hosts) is not needed where the image already is Node 24.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-bookworm-slim
# MALLOC_ARENA_MAX: two glibc malloc arenas instead of one per thread; with threads: 2 under
# load RSS stays ~20 MB lower (docs/benchmarks.md). bin/wharf.js sets the same when run directly.
ENV NODE_ENV=production \
    MALLOC_ARENA_MAX=2 \
    WHARF_LISTEN=0.0.0.0:5000 \
    WHARF_DATA_DIR=/var/lib/wharf \
    WHARF_CONFIG=/app/config/default.yaml
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY --from=build /app/dist ./dist
COPY --from=build /app/native/build/Release/sendfile.node ./native/build/Release/sendfile.node
COPY --from=build /app/native/build/Release/hash.node ./native/build/Release/hash.node
COPY --from=build /app/native/build/Release/memory.node ./native/build/Release/memory.node
COPY config ./config
# The cache volume belongs to the unprivileged `node` user the image provides (uid 1000).
RUN mkdir -p /var/lib/wharf && chown node:node /var/lib/wharf
USER node
VOLUME ["/var/lib/wharf"]
EXPOSE 5000
# Liveness from inside the container; no curl in the slim image, Node's fetch does it.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:5000/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The flags of bin/wharf.js's first line: a small young generation keeps RSS under load near the
# idle figure, a full collection each time the old generation grew by half keeps it from first
# climbing ~50 MB, one V8 background thread keeps GC and compiler memory from peaking (docs/benchmarks.md).
ENTRYPOINT ["node", "--max-semi-space-size=1", "--heap-growing-percent=50", "--v8-pool-size=1", "bin/wharf.js"]
CMD ["serve"]
