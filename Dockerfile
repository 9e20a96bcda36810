# Turnpike's container image. docker build -t turnpike . && docker run -p 8080:8080 turnpike
# Build stage: the project's own build (`npm ci`, then `npm pack`, whose prepack compiles dist/ and pins the
# dependencies to package-lock.json as npm-shrinkwrap.json). Runtime stage: Node 24 slim, tini, the package
# installed from that tarball without dev dependencies (deploy/install.sh, the same steps a test runs), a
# non-root user, the config at /etc/turnpike/turnpike.yaml (mount a directory with yours on /etc/turnpike;
# README.md, "Running in production").

FROM node:24-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json README.md ./
COPY src ./src
COPY deploy ./deploy
RUN npm pack --pack-destination /tmp && mv /tmp/turnpike-*.tgz /tmp/turnpike.tgz

FROM node:24-slim
# tini as PID 1: it forwards signals to the gateway (SIGTERM drains, SIGHUP reloads, SIGUSR1 reopens logs) and
# reaps any orphaned process, which Node as PID 1 does not.
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini \
  && rm -rf /var/lib/apt/lists/*
COPY deploy/install.sh /usr/local/share/turnpike/install.sh
COPY --from=build /tmp/turnpike.tgz /tmp/turnpike.tgz
RUN /usr/local/share/turnpike/install.sh install /tmp/turnpike.tgz /usr/local \
  && rm /tmp/turnpike.tgz \
  && npm cache clean --force
COPY deploy/turnpike.yaml /etc/turnpike/turnpike.yaml
ENV NODE_ENV=production \
  TURNPIKE_CONFIG=/etc/turnpike/turnpike.yaml
# The image's node user (uid 1000): listen on 8080 and publish it as 80 (docker run -p 80:8080).
USER node
# The listener of the default config, and the admin listener (127.0.0.1 in that config: for the HEALTHCHECK only).
EXPOSE 8080 9901
# SIGTERM drains in-flight requests for shutdown.drainTimeout (default 30s): give `docker stop -t` at least that.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9901/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/share/turnpike/install.sh", "start"]
CMD []
