# shellcheck shell=bash
# Shared by run.sh and test.sh: a pnpm that works on a fresh machine, installed deps, the
# environment (.env if present, else .env.example) and the servers. Source it; do not run it.

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)

# corepack's signature check fails against our registry, so skip it (it still pins the version
# named in package.json's packageManager field).
export COREPACK_INTEGRITY_KEYS=0
pnpm() {
  if command -v corepack >/dev/null 2>&1; then corepack pnpm "$@"; else command pnpm "$@"; fi
}

ensure_deps() {
  if [ ! -d "$ROOT/node_modules/.pnpm" ] || [ "$ROOT/pnpm-lock.yaml" -nt "$ROOT/node_modules/.modules.yaml" ]; then
    echo "setup: installing dependencies with pnpm (frozen lockfile)…"
    (cd "$ROOT" && pnpm install --frozen-lockfile --reporter=append-only)
  fi
}

load_env() {
  local file=""
  if [ -f "$ROOT/.env" ]; then file="$ROOT/.env"; elif [ -f "$ROOT/.env.example" ]; then file="$ROOT/.env.example"; fi
  [ -n "$file" ] || return 0
  local line key
  while IFS= read -r line || [ -n "$line" ]; do
    case $line in '' | '#'*) continue ;; esac
    key=${line%%=*}
    # variables already set in the environment win
    if [ -z "${!key+x}" ]; then export "${key}=${line#*=}"; fi
  done <"$file"
}

# Install, load the environment and bring the servers up. Infrastructure that was not running
# before is stopped again when the calling script exits (unless KEEP_INFRA=1); what was already
# running is left alone.
prepare_platform() {
  ensure_deps
  load_env
  local already_up=no
  if bash "$ROOT/scripts/infra.sh" status >/dev/null 2>&1; then already_up=yes; fi
  bash "$ROOT/scripts/infra.sh" up
  if [ "$already_up" = no ] && [ "${KEEP_INFRA:-}" != 1 ]; then
    trap 'echo "stopping infrastructure started by this run…"; bash "$ROOT/scripts/infra.sh" down' EXIT
  fi
}
