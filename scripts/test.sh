#!/usr/bin/env bash
# `pnpm test` / `npm test`: install, bring up the real servers, then lint (ESLint and Prettier's
# check), typecheck, unit and integration tests. Infrastructure this run started is stopped again at the end.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
prepare_platform
ensure_chromium
ensure_promtool

echo "== lint"
node_modules/.bin/eslint .
# Formatting (.prettierrc.json, .prettierignore): `pnpm format` rewrites what this refuses.
node_modules/.bin/prettier --check .
echo "== typecheck"
# Project references (tsconfig.json): each package sees only the packages it declares.
node_modules/.bin/tsc -b tsconfig.json
echo "== OpenAPI lint"
# The documents ingest and the query API serve, linted against redocly.yaml (no telemetry, no update check).
node_modules/.bin/tsx scripts/openapi.ts .data/openapi
REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true node_modules/.bin/redocly lint --format=stylish .data/openapi/ingest.json .data/openapi/query-api.json
echo "== unit and integration tests"
mkdir -p .data
status=0
# --forceExit: a guard only. The open handle that made Jest wait forever after the last test (ingest's
# publisher disconnected a producer replaced after a too-large refusal while a send of its was still
# retrying, and the retry reopened its broker sockets) is fixed: the publisher now disconnects a
# replaced producer once its last send settled, and services/ingest/test/oversized.int.test.ts exits
# on its own. The whole suite has not been re-checked without the flag.
node_modules/.bin/jest --ci --runInBand --forceExit --json --outputFile=.data/jest-results.json "$@" || status=$?
# One plain closing line that any CI reader understands, whatever Jest printed above it.
# shellcheck disable=SC2016 # the ${…} are JavaScript
node -e 'const r = require("./.data/jest-results.json"); console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed`)' || true
exit "$status"
