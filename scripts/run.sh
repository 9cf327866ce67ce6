#!/usr/bin/env bash
# `pnpm start` / `npm start`: install, bring up Kafka/Postgres/Redis, run the four services and
# the demo stream in the foreground with interleaved logs. Ctrl-C stops everything it started.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
prepare_platform

export LOG_FORMAT=${LOG_FORMAT:-pretty}
node_modules/.bin/tsx scripts/services.ts
