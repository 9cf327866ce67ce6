# Shared by run.sh, test.sh and .ci/run: a pnpm that works on a fresh machine, installed deps,
# and the environment (.env if present, else .env.example). Source it; do not run it.

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
    if [ -z "${!key+x}" ]; then export "$line"; fi
  done <"$file"
}
