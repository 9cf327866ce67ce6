#!/usr/bin/env bash
# bench/cold-pages.sh DATABASE SCHEMA — makes the next read of every page of SCHEMA's relations a read
# from disk, as after a host's restart (BENCHMARKS.md "Previews and similar people at 1 M: the first read
# of pages"): (1) Postgres's shared_buffers are filled with a throwaway table's pages (bench_cold_flush in
# DATABASE's public schema, 5 × shared_buffers, so that no page read often outlives the clock sweep; every
# database's cached pages go, so only under the bench lock), then (2) the OS page cache drops SCHEMA's files
# (posix_fadvise DONTNEED through `dd iflag=nocache`; other files keep their pages). Needs a local Postgres whose data directory this user may open (root
# here), and pg_prewarm (migration 210). Prints how much of SCHEMA was cached before and after.
set -euo pipefail
db=$1 schema=$2
psql=(psql -h 127.0.0.1 -U postgres -d "$db" -qAt -v ON_ERROR_STOP=1)
"${psql[@]}" -c 'CREATE EXTENSION IF NOT EXISTS pg_buffercache' -c 'CREATE EXTENSION IF NOT EXISTS pg_prewarm SCHEMA public'
cached() {
  "${psql[@]}" -c "SELECT count(*) || ' buffers in shared_buffers' FROM pg_buffercache b JOIN pg_class c ON b.relfilenode = pg_relation_filenode(c.oid)
    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '$schema' AND b.reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())"
  local pages=0
  for f in "${files[@]}"; do pages=$((pages + $(fincore -nb -o PAGES "$f" 2>/dev/null || echo 0))); done
  echo "$pages OS pages cached of $(du -cb "${files[@]}" | tail -1 | cut -f1) bytes"
}
datadir=$("${psql[@]}" -c 'SHOW data_directory')
mapfile -t rels < <("${psql[@]}" -c "SELECT pg_relation_filepath(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = '$schema' AND pg_relation_filepath(c.oid) IS NOT NULL")
files=()
for r in "${rels[@]}"; do for f in "$datadir/$r" "$datadir/$r".* "$datadir/$r"_*; do [[ -f $f ]] && files+=("$f"); done; done
echo "before: $(cached | paste -sd ';')"
sb=$("${psql[@]}" -c "SELECT setting::bigint * 8192 FROM pg_settings WHERE name = 'shared_buffers'")
rows=$((sb * 5 / 1000)) # ~1 000 bytes a row
# made for this shared_buffers size, and dropped once it has pushed the schema's pages out (its own buffers go
# with it): nothing of ~5 × shared_buffers is left behind in public
"${psql[@]}" -c 'DROP TABLE IF EXISTS public.bench_cold_flush' \
  -c "CREATE TABLE public.bench_cold_flush AS SELECT g, repeat('x', 960) AS pad FROM generate_series(1, $rows) g" \
  -c "SELECT public.pg_prewarm('public.bench_cold_flush', 'buffer')" -c 'DROP TABLE public.bench_cold_flush' >/dev/null
for f in "${files[@]}"; do dd if="$f" iflag=nocache count=0 status=none; done
echo "after: $(cached | paste -sd ';')"
