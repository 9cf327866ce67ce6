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

# Install, load the environment and bring the servers up. What this run starts is stopped again
# when the calling script exits — at its end, on an error, or on Ctrl-C/SIGTERM/SIGHUP — unless
# KEEP_INFRA=1. "What this run starts" is what `infra.sh up` marked as started during this run;
# whatever was running before (the machine's own servers, or a broker an earlier `infra:up` left
# running) is left alone, and the exit message says what stays up and how to stop it.
prepare_platform() {
  ensure_deps
  load_env
  INFRA_BEFORE=" $(bash "$ROOT/scripts/infra.sh" started 2>/dev/null | tr '\n' ' ')"
  # Set before `up`, so a Ctrl-C while the broker is starting stops it too. A signal's trap runs
  # once the foreground command (the services) has exited, then `exit` runs the EXIT trap.
  trap stop_what_this_run_started EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
  bash "$ROOT/scripts/infra.sh" up
}

stop_what_this_run_started() {
  local status=$? c started=() kept=()
  # Ignored here and in the commands below (children inherit it): a second Ctrl-C, common while
  # the services drain, must not cut the broker's shutdown short and leave it running.
  trap '' INT TERM HUP
  for c in $(bash "$ROOT/scripts/infra.sh" started 2>/dev/null); do
    if [[ $INFRA_BEFORE == *" $c "* ]]; then kept+=("$c"); else started+=("$c"); fi
  done
  if ((${#started[@]} > 0)); then
    if [ "${KEEP_INFRA:-}" = 1 ]; then
      echo "KEEP_INFRA=1: leaving ${started[*]} running (pnpm infra:down stops it)"
    else
      echo "stopping what this run started: ${started[*]}…"
      bash "$ROOT/scripts/infra.sh" down "${started[@]}" || true
    fi
  fi
  if ((${#kept[@]} > 0)); then
    echo "${kept[*]} was running before this run (started by an earlier infra:up) and stays up; pnpm infra:down stops it"
  fi
  exit "$status"
}

# Debian's Chromium for the browser tests (playwright-core drives it; its own browser download cannot
# reach the internet). Installed with apt-get when missing; a machine where that fails runs the
# browser tests as skipped with a message saying why (see packages/testkit/src/browser.ts).
ensure_chromium() {
  if command -v chromium >/dev/null 2>&1; then return 0; fi
  echo "setup: installing Debian's chromium for the browser tests…"
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ||
      echo "setup: chromium could not be installed; browser tests will be skipped" >&2
  else
    echo "setup: not root, cannot apt-get install chromium; browser tests will be skipped" >&2
  fi
}

# promtool and prometheus from Debian's prometheus package, unpacked into .data/tools (apt-get
# download + dpkg -x, so no Prometheus daemon is installed or started as a system service; the
# real-Prometheus test runs its own). Exports PROMTOOL and PROMETHEUS when they are there.
ensure_promtool() {
  local dir="$ROOT/.data/tools/prometheus"
  if [ ! -x "$dir/usr/bin/promtool" ]; then
    echo "setup: fetching promtool (Debian's prometheus package)…"
    local tmp
    tmp=$(mktemp -d)
    if (cd "$tmp" && { apt-get download prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get download prometheus >/dev/null; }; }) &&
      mkdir -p "$dir" && dpkg -x "$tmp"/prometheus_*.deb "$dir"; then
      :
    else
      echo "setup: promtool could not be fetched; promtool checks will be skipped" >&2
    fi
    rm -rf "$tmp"
  fi
  if [ -x "$dir/usr/bin/promtool" ]; then export PROMTOOL="$dir/usr/bin/promtool"; fi
  if [ -x "$dir/usr/bin/prometheus" ]; then export PROMETHEUS="$dir/usr/bin/prometheus"; fi
}
