#!/usr/bin/env bash
# `pnpm start` / `npm start`: install, bring up Kafka/Postgres/Redis, run the four services and
# the demo stream in the foreground with interleaved logs. Ctrl-C stops the services and every
# server this run started; servers that were already running stay up (prepare_platform, lib.sh).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
prepare_platform

export LOG_FORMAT=${LOG_FORMAT:-pretty}
node_modules/.bin/tsx scripts/services.ts
