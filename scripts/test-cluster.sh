#!/usr/bin/env bash
# `pnpm test:cluster`: bring up the multi-node stack (`infra.sh up --cluster`: 3 Kafka brokers, 6
# Redis nodes, ~1.5 GB), run the cluster tests against it, and stop the stack again however the
# run ends — at its end, on a failure, or on Ctrl-C/SIGTERM/SIGHUP — as `pnpm test` does for the
# servers it starts. A stack that was already fully up before this run is left up, and
# KEEP_INFRA=1 leaves it running; `bash scripts/infra.sh down --cluster` stops it then.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ensure_deps

CLUSTER_WAS_UP=0
bash scripts/infra.sh status --cluster >/dev/null 2>&1 && CLUSTER_WAS_UP=1

stop_the_cluster_this_run_started() {
  local status=$?
  # A second Ctrl-C while the brokers stop must not cut their shutdown short (children inherit it).
  trap '' INT TERM HUP
  if ((CLUSTER_WAS_UP == 1)); then
    echo "the cluster stack was up before this run and stays up; bash scripts/infra.sh down --cluster stops it"
  elif [ "${KEEP_INFRA:-}" = 1 ]; then
    echo "KEEP_INFRA=1: leaving the cluster stack running (bash scripts/infra.sh down --cluster stops it)"
  else
    echo "stopping the cluster stack this run started…"
    bash scripts/infra.sh down --cluster || true
  fi
  exit "$status"
}
# Set before `up`, so a stack left half-started by a failure or a Ctrl-C is stopped too.
trap stop_the_cluster_this_run_started EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

bash scripts/infra.sh up --cluster
TEST_CLUSTER=1 node_modules/.bin/jest --selectProjects cluster --runInBand "$@"
