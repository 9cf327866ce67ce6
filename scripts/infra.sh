#!/usr/bin/env bash
# Local infrastructure for pstream without Docker: Kafka (KRaft, from Maven
# jars), PostgreSQL and Redis on 127.0.0.1.
#
# Usage:
#   scripts/infra.sh up      start whatever is not already answering, create the
#                            database and Kafka topics, run migrations; idempotent
#   scripts/infra.sh down [kafka|postgres|redis…]
#                            stop only what `up` started (marker files in .data/infra/);
#                            with names, only those of them
#   scripts/infra.sh status  one line per component; exit 0 if all up, 3 otherwise
#   scripts/infra.sh started the components `up` started and that are not yet stopped, one a line
#   scripts/infra.sh up|down|status --cluster
#                            the same for the multi-node stack instead of Kafka's and Redis's
#                            single servers (which it never touches): three KRaft brokers on
#                            127.0.0.1:19192-19194 (controllers 19292-19294, replication factor 3,
#                            min.insync.replicas 2) and a Redis Cluster of 3 masters + 3 replicas on
#                            127.0.0.1:7101-7106 from the machine's redis-server (data in
#                            .data/cluster/); Postgres, the database, topics (on the cluster) and
#                            migrations as for `up`. Use it with KAFKA_BROKERS and
#                            REDIS_CLUSTER_NODES as printed by `up --cluster`.
#
# Configuration (environment first, then .env, else .env.example; never overridden):
#   KAFKA_BROKERS      default 127.0.0.1:9092 (first entry is used)
#   KAFKA_CONTROLLER_PORT  KRaft controller port for a broker we start (default broker port + 1)
#   DATABASE_URL       default postgres://postgres@127.0.0.1:5432/profiles
#   REDIS_URL          default redis://127.0.0.1:6379/0
#   EVENTS_TOPIC       default profile.events.v1      (EVENTS_PARTITIONS, default 12)
#   DLQ_TOPIC          default profile.events.dlq.v1  (3 partitions)
#   LIFECYCLE_TOPIC    default profile.lifecycle.v1   (3 partitions)
#   AUDIENCES_TOPIC    default profile.audiences.v1   (3 partitions)
#   PSTREAM_DATA_DIR   runtime state (markers, the broker's data), default <repo>/.data; tests
#                      point it elsewhere to run a whole `npm start` beside a developer's own
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd -- "$ROOT"

DATA_DIR=${PSTREAM_DATA_DIR:-"$ROOT/.data"}
STATE_DIR="$DATA_DIR/infra"
BROKER_SH="$ROOT/infra/kafka/broker.sh"
KAFKA_MAIN_DIR="$DATA_DIR/kafka/main"
KAFKA_MAIN_LOGS="$DATA_DIR/kafka/logs"
TOPIC_CMD=org.apache.kafka.tools.TopicCommand # Kafka 3.9: kafka.admin.TopicCommand is gone

say() { printf '%s\n' "$*"; }
die() { printf 'infra: ERROR: %s\n' "$*" >&2; exit 1; }

now() { printf '%s\n' "${EPOCHREALTIME/,/.}"; }
elapsed_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# port_open HOST PORT
port_open() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" >/dev/null 2>&1
}

# wait_until CHECK SECONDS LOGFILE MESSAGE: poll CHECK until it succeeds; after SECONDS, show
# the log's tail and fail with MESSAGE.
wait_until() {
  local check=$1 limit=$2 logfile=$3 message=$4 t0=$SECONDS
  until "$check"; do
    if ((SECONDS - t0 >= limit)); then
      tail -n 20 "$logfile" >&2 2>/dev/null || true
      die "$message"
    fi
    sleep 0.3
  done
}

is_local_host() {
  case $1 in 127.0.0.1 | localhost | ::1 | '[::1]') return 0 ;; *) return 1 ;; esac
}

# ---------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------
# load_env_file FILE: export KEY=VALUE lines for keys not already set.
load_env_file() {
  local file=$1 line key val
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%$'\r'}
    [[ $line =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*=(.*)$ ]] || continue
    key=${BASH_REMATCH[2]}
    val=${BASH_REMATCH[3]}
    val=${val#"${val%%[![:space:]]*}"} # ltrim
    if [[ $val =~ ^\"(.*)\"[[:space:]]*(#.*)?$ || $val =~ ^\'(.*)\'[[:space:]]*(#.*)?$ ]]; then
      val=${BASH_REMATCH[1]}
    else
      val=${val%%[[:space:]]#*}            # strip " # comment"
      val=${val%"${val##*[![:space:]]}"}   # rtrim
    fi
    if [[ -z ${!key+x} ]]; then
      export "$key=$val"
    fi
  done <"$file"
}

load_config() {
  if [[ -f $ROOT/.env ]]; then
    load_env_file "$ROOT/.env"
  elif [[ -f $ROOT/.env.example ]]; then
    load_env_file "$ROOT/.env.example"
  fi

  export KAFKA_BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092}
  export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/profiles}
  export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
  EVENTS_TOPIC=${EVENTS_TOPIC:-profile.events.v1}
  DLQ_TOPIC=${DLQ_TOPIC:-profile.events.dlq.v1}
  LIFECYCLE_TOPIC=${LIFECYCLE_TOPIC:-profile.lifecycle.v1}
  AUDIENCES_TOPIC=${AUDIENCES_TOPIC:-profile.audiences.v1}
  EVENTS_PARTITIONS=${EVENTS_PARTITIONS:-12}
  [[ $EVENTS_PARTITIONS =~ ^[1-9][0-9]*$ ]] || die "EVENTS_PARTITIONS must be a positive integer, got '$EVENTS_PARTITIONS'"

  # Kafka: first bootstrap server, with an optional PLAINTEXT:// prefix.
  local b=${KAFKA_BROKERS%%,*}
  b=${b#*://}
  [[ $b =~ ^(.+):([0-9]+)$ ]] || die "cannot parse KAFKA_BROKERS='$KAFKA_BROKERS' (want host:port)"
  KAFKA_HOST=${BASH_REMATCH[1]}
  KAFKA_PORT=${BASH_REMATCH[2]}
  KAFKA_BOOTSTRAP="$KAFKA_HOST:$KAFKA_PORT"
  KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}

  # Postgres: postgres[ql]://[user[:password]@]host[:port]/db[?params]
  local re='^postgres(ql)?://(([^:@/]+)(:([^@/]*))?@)?([^:/?]+)(:([0-9]+))?/([^?]+)(\?.*)?$'
  [[ $DATABASE_URL =~ $re ]] || die "cannot parse DATABASE_URL='$DATABASE_URL' (want postgres://user@host:port/db)"
  PG_USER=${BASH_REMATCH[3]:-postgres}
  PG_PASSWORD=${BASH_REMATCH[5]:-}
  PG_HOST=${BASH_REMATCH[6]}
  PG_PORT=${BASH_REMATCH[8]:-5432}
  PG_DB=${BASH_REMATCH[9]}
  [[ $PG_DB =~ ^[A-Za-z0-9_-]+$ ]] || die "database name '$PG_DB' from DATABASE_URL has unsupported characters"
  [[ $PG_USER =~ ^[A-Za-z0-9_-]+$ ]] || die "user name '$PG_USER' from DATABASE_URL has unsupported characters"

  # Redis: redis://[[user]:password@]host[:port][/db]
  re='^rediss?://(([^:@/]*)(:([^@/]*))?@)?([^:/?]+)(:([0-9]+))?(/.*)?$'
  [[ $REDIS_URL =~ $re ]] || die "cannot parse REDIS_URL='$REDIS_URL' (want redis://host:port/db)"
  REDIS_PASSWORD=${BASH_REMATCH[4]:-}
  REDIS_HOST=${BASH_REMATCH[5]}
  REDIS_PORT=${BASH_REMATCH[7]:-6379}
}

# ---------------------------------------------------------------------------
# markers: what `up` started, so `down` only stops that
# ---------------------------------------------------------------------------
mark() { mkdir -p -- "$STATE_DIR"; printf '%s\n' "${2:-}" >"$STATE_DIR/$1.started"; }
marked() { [[ -f $STATE_DIR/$1.started ]]; }
unmark() { rm -f -- "$STATE_DIR/$1.started"; }
marker_value() { cat "$STATE_DIR/$1.started" 2>/dev/null || true; }

# apt_install NAME PACKAGE...
apt_install() {
  local name=$1
  shift
  command -v apt-get >/dev/null 2>&1 || die "$name: not installed, and apt-get is not available to install it"
  [[ $(id -u) -eq 0 ]] || die "$name: not installed; installing it needs root (apt-get install -y $*)"
  say "$name: not installed; installing with apt-get (one-time)…"
  local log="$STATE_DIR/apt-$name.log"
  mkdir -p -- "$STATE_DIR"
  if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2 || true
    die "apt-get install $* failed (log: $log)"
  fi
}

# ---------------------------------------------------------------------------
# Kafka
# ---------------------------------------------------------------------------
kafka_tool() {
  KAFKA_TOOL_OPTS="-Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC" "$BROKER_SH" run "$@"
}

kafka_up() {
  "$BROKER_SH" fetch # jars are needed for the topic tools even when the broker is reused
  if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
    if marked kafka; then
      say "kafka: already running on $KAFKA_BOOTSTRAP (started by infra)"
    else
      say "kafka: already running on $KAFKA_BOOTSTRAP (reusing it)"
    fi
    return 0
  fi
  is_local_host "$KAFKA_HOST" || die "kafka: nothing answers on $KAFKA_BOOTSTRAP and it is not a local address; start it there or point KAFKA_BROKERS at 127.0.0.1"
  mark kafka "$KAFKA_MAIN_DIR"
  KAFKA_LOG_DIR="$KAFKA_MAIN_LOGS" "$BROKER_SH" start "$KAFKA_MAIN_DIR" "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" ||
    die "kafka: could not start the broker (logs: $KAFKA_MAIN_LOGS)"
  say "kafka: started on $KAFKA_BOOTSTRAP"
}

kafka_down() {
  if marked kafka; then
    "$BROKER_SH" stop "$(marker_value kafka)"
    unmark kafka
    say "kafka: stopped"
  elif port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
    say "kafka: left running on $KAFKA_BOOTSTRAP (not started by infra)"
  else
    say "kafka: not running"
  fi
}

kafka_topics() { # [REPLICATION_FACTOR]
  local rf=${1:-1}
  local -a names=("$EVENTS_TOPIC" "$DLQ_TOPIC" "$LIFECYCLE_TOPIC" "$AUDIENCES_TOPIC")
  local -a parts=("$EVENTS_PARTITIONS" 3 3 3)
  # The events topic is the source of truth: `pnpm scorer:rebuild` replays it from the beginning
  # (docs/operations.md §6), so it keeps everything; the broker default (24 h) applies to the others.
  local -a configs=("--config retention.ms=-1 --config retention.bytes=-1" "" "" "")
  local regex="" n i out
  for n in "${names[@]}"; do regex+="${regex:+|}${n//./\\.}"; done

  # One JVM to see which topics exist (and with how many partitions).
  if ! out=$(kafka_tool "$TOPIC_CMD" --bootstrap-server "$KAFKA_BOOTSTRAP" --describe --if-exists --topic "$regex" 2>&1); then
    printf '%s\n' "$out" >&2
    die "topics: could not describe topics on $KAFKA_BOOTSTRAP"
  fi
  local -A have=()
  local line t c
  while IFS= read -r line; do
    if [[ $line =~ ^Topic:[[:space:]]*([^[:space:]]+)[[:space:]].*PartitionCount:[[:space:]]*([0-9]+) ]]; then
      have[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
    fi
  done <<<"$out"

  for i in "${!names[@]}"; do
    t=${names[$i]}
    c=${parts[$i]}
    if [[ -n ${have[$t]:-} ]]; then
      if [[ ${have[$t]} != "$c" ]]; then
        say "topics: $t exists with ${have[$t]} partitions (wanted $c; left as is)"
      else
        say "topics: $t present ($c partitions)"
      fi
      continue
    fi
    # shellcheck disable=SC2086 # configs[i] is a list of flags
    if ! out=$(kafka_tool "$TOPIC_CMD" --bootstrap-server "$KAFKA_BOOTSTRAP" --create --if-not-exists \
      --topic "$t" --partitions "$c" --replication-factor "$rf" ${configs[$i]} 2>&1); then
      printf '%s\n' "$out" >&2
      die "topics: could not create $t"
    fi
    say "topics: $t created ($c partitions)"
  done
}

# ---------------------------------------------------------------------------
# the multi-node stack (--cluster)
# ---------------------------------------------------------------------------
CLUSTER_DIR="$DATA_DIR/cluster"
CLUSTER_KAFKA_PORTS=(19192 19193 19194)
CLUSTER_CONTROLLER_PORTS=(19292 19293 19294)
CLUSTER_REDIS_PORTS=(7101 7102 7103 7104 7105 7106)
CLUSTER_KAFKA_BOOTSTRAP="127.0.0.1:19192,127.0.0.1:19193,127.0.0.1:19194"
CLUSTER_REDIS_NODES="127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103,127.0.0.1:7104,127.0.0.1:7105,127.0.0.1:7106"

kafka_cluster_up() {
  "$BROKER_SH" fetch
  local i voters="" cid pids=() failed=0
  for i in 0 1 2; do voters+="${voters:+,}$((i + 1))@127.0.0.1:${CLUSTER_CONTROLLER_PORTS[$i]}"; done
  mkdir -p -- "$CLUSTER_DIR/kafka"
  if [[ -s $CLUSTER_DIR/kafka/cluster.id ]]; then
    cid=$(cat "$CLUSTER_DIR/kafka/cluster.id")
  else
    cid=-
    while [[ $cid == -* ]]; do cid=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'); done
    printf '%s\n' "$cid" >"$CLUSTER_DIR/kafka/cluster.id"
  fi
  # All three at once: none of them finishes starting until a quorum of controllers (2 of 3) answers.
  for i in 0 1 2; do
    KAFKA_NODE_ID=$((i + 1)) KAFKA_VOTERS=$voters KAFKA_CLUSTER_ID=$cid KAFKA_PROPS="$ROOT/infra/kafka/cluster.properties" \
      KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:-"-Xmx384m -Xms128m"} KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-120} \
      "$BROKER_SH" start "$CLUSTER_DIR/kafka/b$((i + 1))" "${CLUSTER_KAFKA_PORTS[$i]}" "${CLUSTER_CONTROLLER_PORTS[$i]}" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || failed=1; done
  ((failed == 0)) || die "kafka cluster: a broker did not start (logs: $CLUSTER_DIR/kafka/b*/logs)"
  say "kafka cluster: up on $CLUSTER_KAFKA_BOOTSTRAP"
}

kafka_cluster_down() {
  # All three at once: stopped one by one, the last could not finish its controlled shutdown
  # without a quorum of controllers and would wait for the SIGKILL timeout.
  local i pids=()
  for i in 1 2 3; do "$BROKER_SH" stop "$CLUSTER_DIR/kafka/b$i" & pids+=($!); done
  for i in "${pids[@]}"; do wait "$i" || true; done
}

redis_node_up() { # PORT -> 0 if it answers PING
  [[ $(timeout 3 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null) == PONG ]]
}

redis_cluster_ok() { # every node answers and reports cluster_state:ok
  local port
  for port in "${CLUSTER_REDIS_PORTS[@]}"; do
    timeout 3 redis-cli -h 127.0.0.1 -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
  done
}

redis_cluster_up() {
  command -v redis-server >/dev/null 2>&1 || apt_install redis redis-server redis-tools
  local port dir
  for port in "${CLUSTER_REDIS_PORTS[@]}"; do
    if redis_node_up "$port"; then continue; fi
    port_open 127.0.0.1 "$port" && die "redis cluster: port $port is taken by something that is not Redis"
    dir="$CLUSTER_DIR/redis/$port"
    mkdir -p -- "$dir"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --dir "$dir" \
      --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
      --appendonly yes --appendfsync everysec --save "" \
      --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null ||
      die "redis cluster: redis-server on $port failed (log: $dir/redis.log)"
  done
  for port in "${CLUSTER_REDIS_PORTS[@]}"; do
    local t0=$SECONDS
    until redis_node_up "$port"; do
      ((SECONDS - t0 < 15)) || die "redis cluster: node $port does not answer (log: $CLUSTER_DIR/redis/$port/redis.log)"
      sleep 0.2
    done
  done
  if ! redis_cluster_ok; then
    if [[ $(redis-cli -h 127.0.0.1 -p "${CLUSTER_REDIS_PORTS[0]}" cluster info | sed -n 's/^cluster_known_nodes:\([0-9]*\).*/\1/p') == 1 ]]; then
      local -a hosts=()
      for port in "${CLUSTER_REDIS_PORTS[@]}"; do hosts+=("127.0.0.1:$port"); done
      redis-cli --cluster create "${hosts[@]}" --cluster-replicas 1 --cluster-yes >"$CLUSTER_DIR/redis/create.log" 2>&1 ||
        { tail -n 20 "$CLUSTER_DIR/redis/create.log" >&2; die "redis cluster: redis-cli --cluster create failed"; }
    fi
    local t0=$SECONDS
    until redis_cluster_ok; do
      ((SECONDS - t0 < 30)) || die "redis cluster: cluster_state is not ok after 30s (redis-cli -p ${CLUSTER_REDIS_PORTS[0]} cluster info)"
      sleep 0.3
    done
  fi
  say "redis cluster: up on $CLUSTER_REDIS_NODES (3 masters, 3 replicas)"
}

redis_cluster_down() {
  local port
  for port in "${CLUSTER_REDIS_PORTS[@]}"; do
    # only our own nodes: a cluster-enabled server whose pid file is in our data dir
    [[ -f $CLUSTER_DIR/redis/$port/redis.pid ]] || continue
    timeout 10 redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
  done
  say "redis cluster: stopped"
}

cluster_up() {
  local t0
  t0=$(now)
  redis_cluster_up
  kafka_cluster_up
  postgres_up
  postgres_autovacuum
  database_up
  KAFKA_BOOTSTRAP=$CLUSTER_KAFKA_BOOTSTRAP kafka_topics 3
  migrate
  say "infra: cluster up in $(elapsed_since "$t0")s"
  say "  KAFKA_BROKERS=$CLUSTER_KAFKA_BOOTSTRAP"
  say "  REDIS_CLUSTER_NODES=$CLUSTER_REDIS_NODES"
}

cluster_down() {
  kafka_cluster_down
  redis_cluster_down
}

cluster_status() {
  local ok=0 i port
  for i in 0 1 2; do
    if port_open 127.0.0.1 "${CLUSTER_KAFKA_PORTS[$i]}"; then say "kafka cluster: broker $((i + 1)) up 127.0.0.1:${CLUSTER_KAFKA_PORTS[$i]}"; else say "kafka cluster: broker $((i + 1)) down 127.0.0.1:${CLUSTER_KAFKA_PORTS[$i]}"; ok=3; fi
  done
  for port in "${CLUSTER_REDIS_PORTS[@]}"; do
    redis_node_up "$port" || { say "redis cluster: node $port down"; ok=3; }
  done
  if redis_cluster_ok; then say "redis cluster: state ok ($CLUSTER_REDIS_NODES)"; else say "redis cluster: state not ok"; ok=3; fi
  return "$ok"
}

# ---------------------------------------------------------------------------
# Postgres
# ---------------------------------------------------------------------------
pg_up() {
  command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2
}

pg_version() { # newest installed cluster version
  find /etc/postgresql -mindepth 2 -maxdepth 2 -type d -name main 2>/dev/null |
    awk -F/ '{ print $4 }' | sort -V | tail -n1
}

pg_trust_local() { # only right after we installed Postgres ourselves
  local ver=$1 hba
  hba="/etc/postgresql/$ver/main/pg_hba.conf"
  [[ -f $hba ]] || die "postgres: $hba not found after install"
  if ! grep -q '^# pstream infra: trust' "$hba"; then
    local tmp
    tmp=$(mktemp)
    {
      printf '# pstream infra: trust local TCP connections (dev/CI only)\n'
      printf 'host    all    all    127.0.0.1/32    trust\n'
      printf 'host    all    all    ::1/128         trust\n'
      cat "$hba"
    } >"$tmp"
    cat "$tmp" >"$hba" # keep owner/permissions of the original
    rm -f -- "$tmp"
    say "postgres: configured trust auth for 127.0.0.1 and ::1 in $hba"
  fi
}

postgres_up() {
  if pg_up; then
    if marked postgres; then
      say "postgres: already running on $PG_HOST:$PG_PORT (started by infra)"
    else
      say "postgres: already running on $PG_HOST:$PG_PORT"
    fi
    return 0
  fi
  is_local_host "$PG_HOST" || die "postgres: not answering on $PG_HOST:$PG_PORT and it is not a local address"

  local ver installed=0
  ver=$(pg_version)
  if [[ -z $ver ]] || ! command -v pg_ctlcluster >/dev/null 2>&1; then
    apt_install postgres postgresql
    installed=1
    ver=$(pg_version)
    [[ -n $ver ]] || die "postgres: installed, but no cluster found under /etc/postgresql"
    pg_trust_local "$ver"
  fi

  mark postgres "$ver"
  local out
  if ! out=$(pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>&1); then
    if [[ $out == *"already running"* ]]; then
      # Debian's postinst may have started it; reload so a freshly written pg_hba.conf applies.
      if ((installed)); then
        pg_ctlcluster --skip-systemctl-redirect "$ver" main reload >/dev/null 2>&1 || true
      fi
    else
      unmark postgres
      printf '%s\n' "$out" >&2
      die "postgres: 'pg_ctlcluster $ver main start' failed (see /var/log/postgresql/postgresql-$ver-main.log)"
    fi
  fi
  wait_until pg_up 30 "/var/log/postgresql/postgresql-$ver-main.log" \
    "postgres: cluster $ver/main started but $PG_HOST:$PG_PORT does not answer after 30s (is it configured for port $PG_PORT?)"
  say "postgres: started ($ver/main on $PG_HOST:$PG_PORT)"
}

# Autovacuum reclaims the dead row versions every UPDATE and DELETE leaves; with it off the
# segmenter's tables bloat and its apply rate falls hour by hour (docs/operations.md "Postgres upkeep").
# Turned on only on a machine-local server this script manages (started by it); any other server
# is left as it is, with a warning.
postgres_autovacuum() {
  local on out
  on=$(psql_admin -tAc 'SHOW autovacuum' 2>&1) || die "postgres: cannot read autovacuum on $PG_HOST:$PG_PORT: $on"
  if [[ $on == on ]]; then
    say "postgres: autovacuum on"
  elif marked postgres && is_local_host "$PG_HOST"; then
    out=$(psql_admin -c 'ALTER SYSTEM SET autovacuum = on' -c 'SELECT pg_reload_conf()' 2>&1) ||
      die "postgres: could not turn autovacuum on: $out"
    say "postgres: autovacuum was off; turned on (ALTER SYSTEM SET autovacuum = on, configuration reloaded)"
  else
    say "postgres: WARNING autovacuum is off on $PG_HOST:$PG_PORT (a server infra does not manage, left as it is):"
    say "  dead rows will pile up and the segmenter slow down; see docs/operations.md \"Postgres upkeep\""
  fi
}

postgres_down() {
  if marked postgres; then
    local ver
    ver=$(marker_value postgres)
    pg_ctlcluster --skip-systemctl-redirect "$ver" main stop >/dev/null 2>&1 || true
    unmark postgres
    say "postgres: stopped ($ver/main)"
  elif pg_up; then
    say "postgres: left running on $PG_HOST:$PG_PORT (not started by infra)"
  else
    say "postgres: not running"
  fi
}

psql_admin() {
  PGPASSWORD=$PG_PASSWORD PGCONNECT_TIMEOUT=5 psql -X -q -v ON_ERROR_STOP=1 \
    -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres "$@"
}

database_up() {
  local exists
  exists=$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" 2>&1) ||
    die "database: cannot query $PG_HOST:$PG_PORT as $PG_USER: $exists"
  if [[ $exists == 1 ]]; then
    say "database: $PG_DB present"
    return 0
  fi
  local out
  out=$(psql_admin -c "CREATE DATABASE \"$PG_DB\"" 2>&1) || die "database: could not create $PG_DB: $out"
  say "database: $PG_DB created"
}

# ---------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------
redis_up_check() {
  command -v redis-cli >/dev/null 2>&1 || return 1
  [[ $(REDISCLI_AUTH=$REDIS_PASSWORD timeout 3 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]
}

redis_up() {
  if redis_up_check; then
    if marked redis; then
      say "redis: already running on $REDIS_HOST:$REDIS_PORT (started by infra)"
    else
      say "redis: already running on $REDIS_HOST:$REDIS_PORT"
    fi
    return 0
  fi
  is_local_host "$REDIS_HOST" || die "redis: not answering on $REDIS_HOST:$REDIS_PORT and it is not a local address"
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    apt_install redis redis-server redis-tools
    if redis_up_check; then # the package's init script may have started one
      mark redis "$REDIS_PORT"
      say "redis: started by the package install on $REDIS_HOST:$REDIS_PORT"
      return 0
    fi
  fi
  local dir=/var/lib/redis logdir=/var/log/redis
  if ! mkdir -p "$dir" "$logdir" 2>/dev/null || [[ ! -w $dir || ! -w $logdir ]]; then
    dir="$DATA_DIR/redis"
    logdir="$DATA_DIR/redis"
    mkdir -p -- "$dir"
  fi
  mark redis "$REDIS_PORT"
  if ! redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" \
    --appendonly no --dir "$dir" --logfile "$logdir/ci.log" >/dev/null; then
    unmark redis
    die "redis: redis-server failed to start (log: $logdir/ci.log)"
  fi
  wait_until redis_up_check 15 "$logdir/ci.log" \
    "redis: started but $REDIS_HOST:$REDIS_PORT does not answer PING after 15s (log: $logdir/ci.log)"
  say "redis: started on $REDIS_HOST:$REDIS_PORT"
}

redis_down() {
  if marked redis; then
    REDISCLI_AUTH=$REDIS_PASSWORD timeout 10 redis-cli -h "$REDIS_HOST" -p "$(marker_value redis)" shutdown nosave >/dev/null 2>&1 || true
    unmark redis
    say "redis: stopped"
  elif redis_up_check; then
    say "redis: left running on $REDIS_HOST:$REDIS_PORT (not started by infra)"
  else
    say "redis: not running"
  fi
}

# ---------------------------------------------------------------------------
# migrations
# ---------------------------------------------------------------------------
migrate() {
  if [[ -f $ROOT/scripts/migrate.ts && -x $ROOT/node_modules/.bin/tsx ]]; then
    local t0
    t0=$(now)
    "$ROOT/node_modules/.bin/tsx" "$ROOT/scripts/migrate.ts" || die "migrations: scripts/migrate.ts failed"
    say "migrations: done ($(elapsed_since "$t0")s)"
  else
    say "migrations: skipped (needs scripts/migrate.ts and node_modules/.bin/tsx; run pnpm install)"
  fi
}

# ---------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------
cmd_up() {
  local t0
  t0=$(now)
  mkdir -p -- "$STATE_DIR"
  kafka_up
  postgres_up
  postgres_autovacuum
  redis_up
  database_up
  kafka_topics
  migrate
  say "infra: up in $(elapsed_since "$t0")s (kafka $KAFKA_BOOTSTRAP, postgres $PG_HOST:$PG_PORT/$PG_DB, redis $REDIS_HOST:$REDIS_PORT)"
}

cmd_down() {
  local c
  (($# > 0)) || set -- kafka postgres redis
  for c in "$@"; do
    case $c in
      kafka | postgres | redis) "${c}_down" ;;
      *) die "down: unknown component '$c' (kafka, postgres or redis)" ;;
    esac
  done
}

cmd_started() {
  local c
  for c in kafka postgres redis; do if marked "$c"; then say "$c"; fi; done
}

cmd_status() {
  local ok=0 note
  note=""
  marked kafka && note=" (started by infra)"
  if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
    say "kafka: up $KAFKA_BOOTSTRAP$note"
  else
    say "kafka: down $KAFKA_BOOTSTRAP"
    ok=3
  fi
  note=""
  marked postgres && note=" (started by infra)"
  if pg_up; then
    say "postgres: up $PG_HOST:$PG_PORT$note"
    if [[ $(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" 2>/dev/null) == 1 ]]; then
      say "database: up $PG_HOST:$PG_PORT/$PG_DB"
    else
      say "database: missing $PG_HOST:$PG_PORT/$PG_DB (run: scripts/infra.sh up)"
      ok=3
    fi
  else
    say "postgres: down $PG_HOST:$PG_PORT"
    say "database: down $PG_HOST:$PG_PORT/$PG_DB"
    ok=3
  fi
  note=""
  marked redis && note=" (started by infra)"
  if redis_up_check; then
    say "redis: up $REDIS_HOST:$REDIS_PORT$note"
  else
    say "redis: down $REDIS_HOST:$REDIS_PORT"
    ok=3
  fi
  return "$ok"
}

main() {
  local cmd=${1:-}
  case $cmd in
    up | down | status | started) ;;
    *)
      awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2
      exit 2
      ;;
  esac
  shift
  if [[ ${1:-} == --cluster ]]; then
    [[ $# -eq 1 ]] || die "--cluster takes no other arguments"
    [[ $cmd != started ]] || die "'started' has no --cluster form"
    load_config
    "cluster_$cmd"
    return
  fi
  load_config
  "cmd_$cmd" "$@"
}

main "$@"
