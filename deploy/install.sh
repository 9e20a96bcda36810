#!/bin/sh
# Installs Turnpike from an `npm pack` tarball, and starts it: the two steps of the container image (Dockerfile),
# the same on a machine without containers (README.md, "Running in production"), and run by
# test/e2e/install.test.ts.
#   deploy/install.sh install TARBALL [PREFIX]  production dependencies only, into PREFIX (default /usr/local):
#                                               PREFIX/bin/turnpike, PREFIX/lib/node_modules/turnpike
#   deploy/install.sh start [OPTION...]         exec turnpike start --config "${TURNPIKE_CONFIG:-/etc/turnpike/turnpike.yaml}" OPTION...
# Node.js 24 must be first on PATH. npm's own settings come from its usual places (npm_config_* variables,
# .npmrc): npm_config_prefer_offline=true installs from npm's cache where it can.
set -eu

usage() {
  echo "usage: $0 install TARBALL [PREFIX] | start [turnpike start option...]" >&2
  exit 2
}

need_node_24() {
  if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 24 ? 0 : 1)' 2>/dev/null; then
    echo "$0: Node.js 24 or newer must be first on PATH (node is $(node --version 2>/dev/null || echo missing))" >&2
    exit 1
  fi
}

[ $# -ge 1 ] || usage
command=$1
shift
case "$command" in
  install)
    [ $# -ge 1 ] && [ $# -le 2 ] || usage
    tarball=$1
    prefix=${2:-/usr/local}
    need_node_24
    npm install --global --prefix "$prefix" --omit=dev --no-audit --no-fund --no-update-notifier "$tarball"
    # Fails the install (and the image build) when the bin cannot start.
    "$prefix/bin/turnpike" --version
    ;;
  start)
    # exec: the gateway keeps this process, so the init process's signals (SIGTERM, SIGHUP) reach it directly.
    exec turnpike start --config "${TURNPIKE_CONFIG:-/etc/turnpike/turnpike.yaml}" "$@"
    ;;
  *)
    usage
    ;;
esac
