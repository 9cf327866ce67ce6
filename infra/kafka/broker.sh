#!/usr/bin/env bash
# Reusable launcher for a single-node Apache Kafka (KRaft) broker run straight
# from Maven-fetched jars (no Kafka tarball, no Docker).
#
# Usage:
#   infra/kafka/broker.sh start  <dataDir> <port> <controllerPort>
#   infra/kafka/broker.sh stop   <dataDir>
#   infra/kafka/broker.sh status <dataDir>      # exit 0 = running, 3 = not running
#   infra/kafka/broker.sh fetch                 # only make sure the jars are present
#   infra/kafka/broker.sh run <main.Class> [args...]
#                                               # run a Kafka tool with the jars, e.g.
#                                               # run kafka.admin.TopicCommand --bootstrap-server 127.0.0.1:9092 --list
#
# Everything a broker owns lives in <dataDir>, so any number of brokers can
# coexist as long as they use different data dirs and ports:
#   <dataDir>/broker.properties   derived config (template: infra/kafka/server.properties)
#   <dataDir>/broker.pid          pid of the running JVM
#   <dataDir>/cluster.id          KRaft cluster id used to format the storage
#   <dataDir>/kraft/              log.dirs (KRaft metadata + topic data)
#   <dataDir>/logs/               server.log + broker.out (unless KAFKA_LOG_DIR is set)
#
# Environment (all optional):
#   KAFKA_LIBS           jar dir (default <repo>/.data/kafka/libs; fetched with Maven if missing)
#   KAFKA_LOG_DIR        where server.log / broker.out go (default <dataDir>/logs)
#   KAFKA_HEAP_OPTS      default "-Xmx512m -Xms256m"
#   KAFKA_JVM_OPTS       extra JVM flags for the broker
#   KAFKA_START_TIMEOUT  seconds to wait for the broker to answer (default 180)
#   KAFKA_STOP_TIMEOUT   seconds to wait after SIGTERM before SIGKILL (default 30)
#   KAFKA_TOOL_OPTS      JVM flags for `run` (default "-Xmx512m"; for quick admin calls
#                        "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC" starts faster)
#   Several brokers as one cluster (scripts/infra.sh up --cluster starts three):
#   KAFKA_NODE_ID        node.id of this broker (default 1)
#   KAFKA_VOTERS         controller.quorum.voters, id@host:port,… (default 1@127.0.0.1:<controllerPort>)
#   KAFKA_CLUSTER_ID     KRaft cluster id to format with (default: a fresh one per data dir);
#                        every member of one cluster must be formatted with the same id
#   KAFKA_PROPS          a properties file whose keys replace the template's
#                        (e.g. infra/kafka/cluster.properties: replication factor 3)
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/../.." && pwd)
POM="$REPO_ROOT/infra/pom.xml"
TEMPLATE="$SCRIPT_DIR/server.properties"
BROKER_LOG4J="$SCRIPT_DIR/log4j.properties"
TOOLS_LOG4J="$SCRIPT_DIR/tools-log4j.properties"
KAFKA_LIBS=${KAFKA_LIBS:-"$REPO_ROOT/.data/kafka/libs"}
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -n1)
KAFKA_VERSION=${KAFKA_VERSION:-unknown}
START_TIMEOUT=${KAFKA_START_TIMEOUT:-180}
STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
HOST=127.0.0.1

log() { printf 'kafka: %s\n' "$*"; }
die() { printf 'kafka: ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2
  exit 2
}

java_bin() {
  if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then
    printf '%s\n' "$JAVA_HOME/bin/java"
  elif command -v java >/dev/null 2>&1; then
    command -v java
  else
    die "java not found (need a JDK/JRE 17+ on PATH or JAVA_HOME)"
  fi
}

# port_open HOST PORT -> 0 if something accepts TCP connections there.
port_open() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" >/dev/null 2>&1
}

# ---------------------------------------------------------------------------
# jars
# ---------------------------------------------------------------------------
pom_stamp() { sha256sum "$POM" | cut -d' ' -f1; }

libs_ok() {
  [[ -f $KAFKA_LIBS/.complete ]] && [[ $(cat "$KAFKA_LIBS/.complete") == "$(pom_stamp)" ]]
}

ensure_libs() {
  libs_ok && return 0
  command -v mvn >/dev/null 2>&1 || die "mvn not found: Maven is needed once to fetch the Kafka jars"
  mkdir -p "$(dirname -- "$KAFKA_LIBS")"
  # Serialise concurrent first runs (e.g. infra.sh and a test starting a broker at once).
  exec 9>"$KAFKA_LIBS.lock"
  flock 9
  if libs_ok; then exec 9>&-; return 0; fi
  if [[ -d $KAFKA_LIBS ]]; then
    log "infra/pom.xml changed: re-fetching Kafka $KAFKA_VERSION jars with Maven…"
  else
    log "fetching Kafka $KAFKA_VERSION jars with Maven (first run only)…"
  fi
  local tmp="$KAFKA_LIBS.tmp.$$" mvnlog="$KAFKA_LIBS.maven.log" t0=$SECONDS
  rm -rf -- "$tmp"
  if ! mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies -DoutputDirectory="$tmp" >"$mvnlog" 2>&1; then
    rm -rf -- "$tmp"
    tail -n 30 "$mvnlog" >&2 || true
    die "Maven could not fetch the Kafka jars (full log: $mvnlog)"
  fi
  compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || die "Maven ran but no kafka_2.13 jar in $tmp (log: $mvnlog)"
  pom_stamp >"$tmp/.complete"
  rm -rf -- "$KAFKA_LIBS"
  mv -- "$tmp" "$KAFKA_LIBS"
  log "fetched $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars into $KAFKA_LIBS in $((SECONDS - t0))s"
  exec 9>&-
}

# ---------------------------------------------------------------------------
# process helpers
# ---------------------------------------------------------------------------
# broker_pid DATADIR -> prints the pid if the broker of DATADIR is alive.
broker_pid() {
  local dir=$1 pidfile="$1/broker.pid" pid cmd
  [[ -f $pidfile ]] || return 1
  pid=$(tr -cd '0-9' <"$pidfile")
  [[ -n $pid ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # Guard against pid reuse: it must be a Kafka JVM using this data dir's config.
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *kafka.Kafka* && $cmd == *"$dir/broker.properties"* ]] || return 1
  printf '%s\n' "$pid"
}

prop() { # prop FILE KEY
  sed -n "s/^$2=//p" "$1" | tail -n1
}

abs_dir() { # create if needed, print absolute path
  mkdir -p -- "$1"
  (cd -- "$1" && pwd)
}

check_port_arg() {
  if [[ ! $1 =~ ^[0-9]+$ ]] || (($1 < 1 || $1 > 65535)); then
    die "invalid port: '$1'"
  fi
}

log_dir_of() { # where the broker of DATADIR writes its logs
  if [[ -f $1/broker.logdir ]]; then cat "$1/broker.logdir"; else printf '%s\n' "${KAFKA_LOG_DIR:-$1/logs}"; fi
}

# show_log_tail LOGDIR [SERVERLOG_OFFSET [BROKEROUT_OFFSET]]: print what this run logged.
show_log_tail() {
  local logdir=$1 f off new
  for f in broker.out server.log; do
    if [[ $f == server.log ]]; then off=${2:-0}; else off=${3:-0}; fi
    [[ -s $logdir/$f ]] || continue
    (($(stat -c %s "$logdir/$f") >= off)) || off=0 # rolled over
    new=$(tail -c +"$((off + 1))" "$logdir/$f" | tail -n 30) || true
    [[ -n $new ]] || continue
    printf -- '--- last lines of %s ---\n%s\n' "$logdir/$f" "$new" >&2
  done
}

# ---------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------
cmd_start() {
  [[ $# -eq 3 ]] || usage
  local dir port=$2 cport=$3
  check_port_arg "$port"
  check_port_arg "$cport"
  [[ $port != "$cport" ]] || die "port and controllerPort must differ"
  dir=$(abs_dir "$1")
  local props="$dir/broker.properties" logdir pid
  logdir=$(abs_dir "${KAFKA_LOG_DIR:-$dir/logs}")

  if pid=$(broker_pid "$dir"); then
    local oldport
    oldport=$(prop "$props" advertised.listeners | sed 's/.*://')
    if [[ $oldport != "$port" ]]; then
      die "a broker for $dir is already running (pid $pid) on port $oldport, not $port; stop it first"
    fi
    if port_open "$HOST" "$port"; then
      log "already running on $HOST:$port (pid $pid, data $dir)"
      return 0
    fi
    log "already starting (pid $pid); waiting for $HOST:$port"
    wait_ready "$dir" "$pid" "$port" "$logdir" 0 0
    return 0
  fi

  port_open "$HOST" "$port" && die "port $HOST:$port is already in use by another process"
  port_open "$HOST" "$cport" && die "controller port $HOST:$cport is already in use by another process"

  ensure_libs
  local java
  java=$(java_bin)

  # Derived config: the template minus the keys we own, plus our values.
  mkdir -p -- "$dir/kraft"
  local owned='node\.id|process\.roles|listeners|advertised\.listeners|controller\.quorum\.voters|log\.dirs'
  local node_id=${KAFKA_NODE_ID:-1} voters=${KAFKA_VOTERS:-"1@$HOST:$cport"}
  [[ $node_id =~ ^[0-9]+$ ]] || die "KAFKA_NODE_ID must be a number, got '$node_id'"
  if [[ -n ${KAFKA_PROPS:-} ]]; then
    [[ -f $KAFKA_PROPS ]] || die "KAFKA_PROPS: no such file: $KAFKA_PROPS"
    local k
    while IFS= read -r k; do owned+="|${k//./\\.}"; done < <(sed -n 's/^[[:space:]]*\([A-Za-z0-9_.-]*\)[[:space:]]*=.*/\1/p' "$KAFKA_PROPS")
  fi
  {
    grep -v -E "^[[:space:]]*($owned)[[:space:]]*=" "$TEMPLATE"
    if [[ -n ${KAFKA_PROPS:-} ]]; then
      printf '\n# ---- from %s ----\n' "$KAFKA_PROPS"
      grep -E '^[[:space:]]*[A-Za-z0-9_.-]+[[:space:]]*=' "$KAFKA_PROPS"
    fi
    printf '\n# ---- set by infra/kafka/broker.sh ----\n'
    printf 'process.roles=broker,controller\n'
    printf 'node.id=%s\n' "$node_id"
    printf 'controller.quorum.voters=%s\n' "$voters"
    printf 'listeners=PLAINTEXT://%s:%s,CONTROLLER://%s:%s\n' "$HOST" "$port" "$HOST" "$cport"
    printf 'advertised.listeners=PLAINTEXT://%s:%s\n' "$HOST" "$port"
    printf 'log.dirs=%s\n' "$dir/kraft"
  } >"$props.tmp"
  mv -- "$props.tmp" "$props"
  printf '%s\n' "$logdir" >"$dir/broker.logdir"

  # Format the KRaft storage once per data dir.
  if [[ ! -f $dir/kraft/meta.properties ]]; then
    local cid
    if [[ -n ${KAFKA_CLUSTER_ID:-} ]]; then
      cid=$KAFKA_CLUSTER_ID
      printf '%s\n' "$cid" >"$dir/cluster.id"
    elif [[ -s $dir/cluster.id ]]; then
      cid=$(cat "$dir/cluster.id")
    else
      # 16 random bytes, base64url without padding = a Kafka Uuid string.
      # (Like Uuid.randomUuid(), avoid a leading '-' that CLIs would take for a flag.)
      cid=-
      while [[ $cid == -* ]]; do
        cid=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
      done
      printf '%s\n' "$cid" >"$dir/cluster.id"
    fi
    log "formatting KRaft storage in $dir/kraft (cluster id $cid)"
    local out
    if ! out=$("$java" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
      -Dlog4j.configuration="file:$TOOLS_LOG4J" -cp "$KAFKA_LIBS/*" \
      kafka.tools.StorageTool format -t "$cid" -c "$props" --ignore-formatted 2>&1); then
      printf '%s\n' "$out" >&2
      die "formatting $dir/kraft failed"
    fi
  fi

  # Launch detached (own session, so the caller's Ctrl-C / job control does not kill it).
  local offset=0 outoffset=0
  [[ -f $logdir/server.log ]] && offset=$(stat -c %s "$logdir/server.log")
  [[ -f $logdir/broker.out ]] && outoffset=$(stat -c %s "$logdir/broker.out")
  printf '===== %s starting broker (port %s, controller %s, data %s) =====\n' \
    "$(date '+%F %T')" "$port" "$cport" "$dir" >>"$logdir/broker.out"
  rm -f -- "$dir/broker.pid"
  local -a heap jvm_extra
  read -r -a heap <<<"${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
  read -r -a jvm_extra <<<"${KAFKA_JVM_OPTS:-}"
  # shellcheck disable=SC2016 # $$ and $1 are expanded by the inner bash on purpose
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$dir/broker.pid" \
    "$java" "${heap[@]}" -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
    -Djava.awt.headless=true \
    -Dkafka.logs.dir="$logdir" -Dlog4j.configuration="file:$BROKER_LOG4J" \
    "${jvm_extra[@]}" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$props" \
    >>"$logdir/broker.out" 2>&1 </dev/null &

  # Wait for the pid file written by the child.
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -s $dir/broker.pid ]] && break
    sleep 0.1
  done
  [[ -s $dir/broker.pid ]] || die "broker process did not start (no pid file in $dir)"
  pid=$(cat "$dir/broker.pid")
  log "starting Kafka $KAFKA_VERSION on $HOST:$port (controller $cport, pid $pid, data $dir)"
  wait_ready "$dir" "$pid" "$port" "$logdir" "$offset" "$outoffset"
}

# wait_ready DATADIR PID PORT LOGDIR SERVERLOG_OFFSET BROKEROUT_OFFSET
wait_ready() {
  local dir=$1 pid=$2 port=$3 logdir=$4 offset=$5 outoffset=$6 t0=$SECONDS last_note=0
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      show_log_tail "$logdir" "$offset" "$outoffset"
      rm -f -- "$dir/broker.pid"
      die "broker (pid $pid) exited during startup; logs: $logdir"
    fi
    if port_open "$HOST" "$port"; then
      # The socket is bound before the broker serves requests; also wait for
      # KafkaRaftServer's "Kafka Server started" line from this run. grep -c reads all of
      # its input: with `grep -q` it stopped at the match, tail died of SIGPIPE once this
      # run's log passed a pipe's buffer (a broker loading thousands of consumer groups
      # logs a line for each) and, under pipefail, the check failed until the timeout.
      if [[ ! -f $logdir/server.log ]] ||
        tail -c +"$((offset + 1))" "$logdir/server.log" 2>/dev/null | grep -c 'Kafka Server started' >/dev/null; then
        log "up on $HOST:$port after $((SECONDS - t0))s (pid $pid)"
        return 0
      fi
    fi
    if ((SECONDS - t0 >= START_TIMEOUT)); then
      show_log_tail "$logdir" "$offset" "$outoffset"
      die "broker (pid $pid) did not answer on $HOST:$port within ${START_TIMEOUT}s (KAFKA_START_TIMEOUT); it is left running for inspection (stop: $0 stop $dir); logs: $logdir"
    fi
    # Progress on a slow start: what the broker is doing (loading the logs and groups of many topics).
    if ((SECONDS - t0 >= 15 && (SECONDS - t0) % 15 == 0 && SECONDS != last_note)); then
      last_note=$SECONDS
      log "still starting after $((SECONDS - t0))s: $(tail -c +"$((offset + 1))" "$logdir/server.log" 2>/dev/null | tail -n 1 | cut -c1-160)"
    fi
    sleep 0.5
  done
}

cmd_stop() {
  [[ $# -eq 1 ]] || usage
  [[ -d $1 ]] || { log "not running (no data dir $1)"; return 0; }
  local dir pid
  dir=$(cd -- "$1" && pwd)
  if ! pid=$(broker_pid "$dir"); then
    if [[ -f $dir/broker.pid ]]; then
      rm -f -- "$dir/broker.pid"
      log "not running (removed stale pid file in $dir)"
    else
      log "not running ($dir)"
    fi
    return 0
  fi
  log "stopping broker pid $pid (data $dir)"
  kill -TERM "$pid" 2>/dev/null || true
  local t0=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS - t0 >= STOP_TIMEOUT)); then
      log "still alive after ${STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.25
  done
  rm -f -- "$dir/broker.pid"
  log "stopped after $((SECONDS - t0))s"
}

cmd_status() {
  [[ $# -eq 1 ]] || usage
  local dir=$1 pid port="?"
  [[ -d $dir ]] && dir=$(cd -- "$dir" && pwd)
  [[ -f $dir/broker.properties ]] && port=$(prop "$dir/broker.properties" advertised.listeners | sed 's/.*://')
  if pid=$(broker_pid "$dir"); then
    if port_open "$HOST" "$port"; then
      log "up on $HOST:$port (pid $pid, data $dir)"
    else
      log "starting, not yet answering on $HOST:$port (pid $pid, data $dir)"
    fi
    return 0
  fi
  log "down (data $dir)"
  return 3
}

cmd_run() {
  [[ $# -ge 1 ]] || usage
  ensure_libs
  local java
  java=$(java_bin)
  local -a opts
  read -r -a opts <<<"${KAFKA_TOOL_OPTS:--Xmx512m}"
  exec "$java" "${opts[@]}" -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$TOOLS_LOG4J" -cp "$KAFKA_LIBS/*" "$@"
}

main() {
  [[ $# -ge 1 ]] || usage
  local cmd=$1
  shift
  case $cmd in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    fetch) [[ $# -eq 0 ]] || usage; ensure_libs; log "Kafka $KAFKA_VERSION jars ready in $KAFKA_LIBS" ;;
    run) cmd_run "$@" ;;
    -h | --help | help) usage ;;
    *) usage ;;
  esac
}

main "$@"
