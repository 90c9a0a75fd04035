# syntax=docker/dockerfile:1
# writ serve in a container: build with the compiler, run the compiled CLI on node:20-slim as a
# non-root user. The config is mounted at /etc/writ/writ.yaml (read-only), the data folder (the
# embedded store and the audit log's signing key) is the volume /var/lib/writ; set
# WRIT_DATABASE_URL to keep the store in PostgreSQL instead (compose.yaml). See docs/deploy.md.
#
# `npm install`, not `npm ci`: the lock does not list every platform's optional builds (README).

FROM node:20.20.2-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm install --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# the build bundles the start-up fast paths (writ hook, writ creds) with esbuild after tsc
COPY scripts/bundle-fast.mjs ./scripts/bundle-fast.mjs
RUN npm run build

FROM node:20.20.2-bookworm-slim AS deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm install --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force

FROM node:20.20.2-bookworm-slim AS runtime
ENV NODE_ENV=production \
    WRIT_DATA_DIR=/var/lib/writ
WORKDIR /opt/writ
# the image's own user, without a shell or a home to write in; the data folder is the only place it writes
RUN groupadd --system --gid 10001 writ \
 && useradd --system --uid 10001 --gid writ --no-create-home --shell /usr/sbin/nologin writ \
 && mkdir -p /var/lib/writ /etc/writ \
 && chown writ:writ /var/lib/writ
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY data ./data
COPY schema ./schema
RUN ln -s /opt/writ/bin/writ.cjs /usr/local/bin/writ
USER writ:writ
VOLUME ["/var/lib/writ"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["writ", "serve"]
# off a loopback host writ serve needs WRIT_PDP_TOKEN and an https --public-url (docs/deploy.md)
CMD ["--config", "/etc/writ/writ.yaml", "--host", "0.0.0.0", "--port", "8080"]
