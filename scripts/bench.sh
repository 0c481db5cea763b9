#!/usr/bin/env bash
# make bench: fsctl against the physical limit of Redis ingestion, measured in the same run.
# For each size: materialize into a fresh redis-server (wall time, peak RSS, phases, Redis memory
# per entity); the same job's RESP stream replayed with `redis-cli --pipe` into another fresh
# server (the reference); warm (extend 100k present keys, recompute 10k missing ones). Reader
# latency is scripts/bench-read.sh's. Writes bench/RESULTS.md and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
SIZES=${SIZES:-"100000 1000000"}
case " $SIZES " in *" $N "*) ;; *) SIZES="$SIZES $N" ;; esac
EMB_N=${EMB_N:-100000}
FSCTL=target/release/fsctl
WORK=bench/work
mkdir -p "$WORK"
cargo build -q --release --bins --examples

dataset() { # name entities embedding_dim [rows_per_entity]
  scripts/bench-dataset.sh "bench/data/$1" "$2" --embedding-dim "$3" --rows-per-entity "${4:-3}"
}

start_redis() { # sets PORT; the server is stopped by stop_all on exit
  PORT=$(shuf -i 20000-60000 -n 1)
  local d; d=$(mktemp -d)
  redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$d" --daemonize yes \
    --logfile "$d/log" --pidfile "$d/pid"
  SERVERS="${SERVERS:-} $PORT"
  for _ in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && return; sleep 0.05; done
  echo "redis-server did not start" >&2; exit 1
}
stop_all() { for p in ${SERVERS:-}; do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done; }
trap stop_all EXIT
used_memory() { redis-cli -p "$1" info memory | awk -F: '/^used_memory:/ {print $2+0}'; }
now() { date +%s.%N; }

measure() { # label dir service [quick: materialize and pipe only]
  local label=$1 dir=$2 service=$3 out=$WORK/$1
  local end; end=$(date -u -d "@$(( $(cat "$dir/ANCHOR") * 3600 ))" +%Y-%m-%dT%H:%M:%SZ)
  rm -rf "$out"; mkdir -p "$out"
  FSCTL_REDIS_URL=redis://127.0.0.1:1/0 $FSCTL -q --repo "$dir" materialize --service "$service" --end "$end" \
    --emit-resp "$out/stream.resp" --force > /dev/null
  stat -c %s "$out/stream.resp" > "$out/stream_bytes"
  # The machine is shared: fsctl and its reference run in turns, REPS times (once from 10M
  # entities), and the report takes the median of each and of the paired ratios.
  local reps=${REPS:-5} r a b t0 t1
  [ "$(stat -c %s "$out/stream.resp")" -gt 1500000000 ] && reps=1
  for r in $(seq "$reps"); do
    # 1. fsctl end to end into a fresh server.
    [ -n "${a:-}" ] && redis-cli -p "$a" shutdown nosave >/dev/null 2>&1
    start_redis; a=$PORT; local base; base=$(used_memory "$a")
    FSCTL_REDIS_URL=redis://127.0.0.1:$a/0 /usr/bin/time -f "%e %M" -o "$out/time.$r" \
      $FSCTL -q --repo "$dir" --format json materialize --service "$service" --end "$end" > "$out/materialize.$r.json"
    echo $(( $(used_memory "$a") - base )) > "$out/redis_bytes"
    # 2. the same command stream through redis-cli --pipe into another fresh server.
    start_redis; b=$PORT
    t0=$(now); redis-cli -p "$b" --pipe < "$out/stream.resp" > "$out/pipe.log"; t1=$(now)
    awk "BEGIN {print $t1 - $t0}" > "$out/pipe_seconds.$r"
    redis-cli -p "$b" shutdown nosave >/dev/null 2>&1 || true
  done
  rm -f "$out/stream.resp"
  if [ "$service" = realtime_scoring ] && [ "${4:-}" != quick ]; then
    # 3. warm: extend 100k present keys; then recompute 10k after deleting every data key.
    t0=$(now); FSCTL_REDIS_URL=redis://127.0.0.1:$a/0 $FSCTL -q --repo "$dir" warm --service "$service" --top-n 100000 >/dev/null; t1=$(now)
    awk "BEGIN {print $t1 - $t0}" > "$out/warm_extend_seconds"
    redis-cli -p "$a" eval "for _,k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('UNLINK', k) end return 1" 0 "fs:banking:$service:*" >/dev/null
    t0=$(now); FSCTL_REDIS_URL=redis://127.0.0.1:$a/0 /usr/bin/time -f "%e %M" -o "$out/warm_time" \
      $FSCTL -q --repo "$dir" --format json warm --service "$service" --top-n 10000 > "$out/warm.json"; t1=$(now)
    awk "BEGIN {print $t1 - $t0}" > "$out/warm_compute_seconds"
  fi
  redis-cli -p "$a" shutdown nosave >/dev/null 2>&1 || true
}

LABELS=""
for n in $SIZES; do
  dir=$(dataset "$n" "$n" 16)
  measure "scoring-$n" "$dir" realtime_scoring
  LABELS="$LABELS scoring-$n"
done
# State is bounded by entities, not rows: the same 1M entities with twice the rows per entity.
case " $SIZES " in *" 1000000 "*)
  dir=$(dataset "1000000-rows6" 1000000 16 6)
  measure "scoring-1000000-rows6" "$dir" realtime_scoring quick
  LABELS="$LABELS scoring-1000000-rows6" ;;
esac
# Redis's memory per key by value size, for keys as long as fsctl's at 1M, each with PXAT: what
# the vector's size would have to be for a per-entity target (SPEC §3 fixes the key).
case " $SIZES " in *" 1000000 "*)
  read -r key_bytes value_bytes < <(python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["services"][0]
snapshot = s["snapshot"]
print(len(f"fs:banking:realtime_scoring:{snapshot}:") + 7, round(s["bytes_written"] / s["entities"]))
' "$WORK/scoring-1000000/materialize.1.json")
  start_redis
  python3 scripts/redis_memory_probe.py "$PORT" "$key_bytes" 1000000 108 124 "$value_bytes" > "$WORK/memory_probe.jsonl"
  redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true ;;
esac

dir=$(dataset "emb-$EMB_N" "$EMB_N" 256)
measure "embedding-$EMB_N" "$dir" recommendations
LABELS="$LABELS embedding-$EMB_N"

python3 scripts/bench_report.py "$WORK" $LABELS > bench/RESULTS.md
cat bench/RESULTS.md
