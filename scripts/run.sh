#!/usr/bin/env bash
# `pnpm start` / `npm start`: install, bring up Kafka/Postgres/Redis, run the four services and
# the demo stream in the foreground with interleaved logs. Ctrl-C stops everything it started.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ensure_deps
load_env

# Leave running what was running before us; stop at exit only what this run started.
already_up=no
if bash scripts/infra.sh status >/dev/null 2>&1; then already_up=yes; fi
bash scripts/infra.sh up
if [ "$already_up" = no ]; then
  trap 'echo "stopping infrastructure started by this run…"; bash scripts/infra.sh down' EXIT
fi

export LOG_FORMAT=${LOG_FORMAT:-pretty}
node_modules/.bin/tsx scripts/services.ts
