#!/usr/bin/env bash
# make bench-cluster (also run by make bench): fsctl on a 3-primary Redis Cluster against the
# same job's per-primary command streams replayed with `redis-cli --pipe` in parallel (same run,
# in turns), and Redis memory per entity of the scalar service on Valkey beside Redis 7.0.
# Writes bench/CLUSTER.md and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
REPS=${REPS:-3}
FSCTL=target/release/fsctl
WORK=bench/work/cluster
rm -rf "$WORK"; mkdir -p "$WORK"
cargo build -q --release --bins --example clusterwrite
now() { date +%s.%N; }
used_memory() { redis-cli -p "$1" info memory | awk -F: '/^used_memory:/ {print $2+0}'; }
# CPU seconds the primaries have used so far, all three together.
servers_cpu() {
  for p in "${CLUSTER_PORTS[@]}"; do redis-cli -p "$p" info cpu; done |
    awk -F: '/^used_cpu_(user|sys):/ {s += $2} END {printf "%.3f\n", s}'
}

# The 1M banking dataset of make bench (regenerated when missing or older than 20 h).
src=$(scripts/bench-dataset.sh "bench/data/$N" "$N" --embedding-dim 16 --rows-per-entity 3)
end=$(date -u -d "@$(( $(cat "$src/ANCHOR") * 3600 ))" +%Y-%m-%dT%H:%M:%SZ)
repo=$(mktemp -d)
ln -s "$(realpath "$src/data")" "$repo/data"
sed 's/^  type: redis$/  type: redis_cluster/' "$src/feature_store.yaml" > "$repo/feature_store.yaml"
job=(--service realtime_scoring --end "$end")

# 1. Cluster: fsctl end to end, then the per-primary streams replayed in parallel.
. scripts/throwaway-cluster.sh
trap 'stop_throwaway_cluster; rm -rf "$repo"' EXIT
export FSCTL_REDIS_URL="$CLUSTER_URL"
$FSCTL -q --repo "$repo" materialize "${job[@]}" --emit-resp "$WORK/stream.resp" --force >/dev/null
flush() { for p in "${CLUSTER_PORTS[@]}"; do redis-cli -p "$p" flushall >/dev/null; done; }
for r in $(seq "$REPS"); do
  flush
  c0=$(servers_cpu); t0=$(now)
  /usr/bin/time -f "%U %S" -o "$WORK/fsctl_cpu.$r" \
    $FSCTL -q --repo "$repo" --format json materialize "${job[@]}" > "$WORK/materialize.$r.json"
  t1=$(now); awk "BEGIN {print $t1 - $t0}" > "$WORK/fsctl_seconds.$r"
  awk "BEGIN {print $(servers_cpu) - $c0}" > "$WORK/servers_cpu_fsctl.$r"
  flush
  c0=$(servers_cpu); t0=$(now)
  for p in "${CLUSTER_PORTS[@]}"; do
    redis-cli -p "$p" --pipe < "$WORK/stream.127.0.0.1-$p.resp" > "$WORK/pipe.$p.log" &
  done
  wait
  t1=$(now); awk "BEGIN {print $t1 - $t0}" > "$WORK/pipe_seconds.$r"
  awk "BEGIN {print $(servers_cpu) - $c0}" > "$WORK/servers_cpu_pipe.$r"
  grep -q "errors: 0" "$WORK"/pipe.*.log || { echo "redis-cli --pipe reported errors" >&2; cat "$WORK"/pipe.*.log >&2; exit 1; }
done
du -cb "$WORK"/stream.*-*.resp | tail -1 | cut -f1 > "$WORK/stream_bytes"
rm -f "$WORK"/stream.*.resp
# The writer alone against redis-rs's cluster_pipe, same commands, same parallelism, in turns.
target/release/examples/clusterwrite "$repo" 300000 "$REPS" > "$WORK/writers.jsonl"
stop_throwaway_cluster
unset FSCTL_REDIS_URL

# 2. Memory per entity of the same job on one server: Valkey and Redis 7.0, fsctl's run against
# its own command stream replayed by redis-cli --pipe (the data keys alone: no key list, no
# manifest), each into a fresh server, read once the server has finished rehashing its tables.
VALKEY=$(scripts/ensure-valkey.sh)
sed 's/^  type: redis_cluster$/  type: redis/' -i "$repo/feature_store.yaml"
FSCTL_REDIS_URL=redis://127.0.0.1:1/0 $FSCTL -q --repo "$repo" materialize "${job[@]}" --emit-resp "$WORK/single.resp" --force >/dev/null
settled() { # port: used_memory once two readings half a second apart agree
  local prev=-1 cur
  for _ in $(seq 40); do cur=$(used_memory "$1"); [ "$cur" = "$prev" ] && break; prev=$cur; sleep 0.5; done
  echo "$cur"
}
fresh() { # server: starts it on a free port, sets PORT and its DIR
  PORT=$(shuf -i 20000-60000 -n 1); DIR=$(mktemp -d)
  "$1" --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR" --daemonize yes --logfile "$DIR/log"
  for _ in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
}
single() { # server label
  local base
  fresh "$1"; base=$(settled "$PORT")
  FSCTL_REDIS_URL=redis://127.0.0.1:$PORT/0 $FSCTL -q --repo "$repo" --format json materialize "${job[@]}" > "$WORK/$2.json"
  echo $(( $(settled "$PORT") - base )) > "$WORK/$2.used"
  "$1" --version | awk '{print $1, $3}' > "$WORK/$2.version"
  redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$DIR"
  fresh "$1"; base=$(settled "$PORT")
  redis-cli -p "$PORT" --pipe < "$WORK/single.resp" > /dev/null
  echo $(( $(settled "$PORT") - base )) > "$WORK/$2.pipe_used"
  redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$DIR"
}
single "$VALKEY" valkey
single redis-server redis
rm -f "$WORK/single.resp"

python3 - "$WORK" "$REPS" > bench/CLUSTER.md <<'PY'
import json, statistics, sys, datetime
work, reps = sys.argv[1], int(sys.argv[2])
rd = lambda n: open(f"{work}/{n}").read().strip()
fs = [float(rd(f"fsctl_seconds.{r}")) for r in range(1, reps + 1)]
pipe = [float(rd(f"pipe_seconds.{r}")) for r in range(1, reps + 1)]
ratios = sorted(p / f for p, f in zip(pipe, fs))
m = json.loads(rd("materialize.1.json"))["services"][0]
n = m["entities"]
print("# fsctl on a Redis Cluster, and Valkey\n")
print(f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on this 2-core machine; "
      "reproduce with `make bench-cluster` (also part of `make bench`).\n")
print(f"## Cluster: 3 primaries (redis-server, one machine), realtime_scoring at {n:,} entities\n")
print("The reference is the same job's command stream as fsctl emits it for this cluster "
      "(`--emit-resp`: one stream per primary), each replayed by its own `redis-cli --pipe` into its "
      f"primary, all three in parallel; fsctl and the reference run in turns, {reps} times, into "
      "flushed primaries. fsctl's time is end to end (Parquet read to commit).\n")
print("| | median | runs |")
print("|---|---|---|")
print(f"| fsctl materialize (s) | {statistics.median(fs):.2f} | {', '.join(f'{x:.2f}' for x in fs)} |")
print(f"| 3 x redis-cli --pipe in parallel (s) | {statistics.median(pipe):.2f} | {', '.join(f'{x:.2f}' for x in pipe)} |")
print(f"| **fsctl throughput / pipe throughput** | **{statistics.median(ratios):.2f}x** | {ratios[0]:.2f}-{ratios[-1]:.2f} |")
med = lambda name: statistics.median(float(rd(f"{name}.{r}")) for r in range(1, reps + 1))
fs_cpu = statistics.median(sum(map(float, rd(f"fsctl_cpu.{r}").split())) for r in range(1, reps + 1))
srv_fs, srv_pipe = med("servers_cpu_fsctl"), med("servers_cpu_pipe")
import os
cores = os.cpu_count()
print(f"\nCPU (medians): fsctl itself {fs_cpu:.2f} s (Parquet read, assemble, encode, send); the three "
      f"primaries {srv_fs:.2f} s while fsctl wrote, {srv_pipe:.2f} s while the pipes replayed. On {cores} cores "
      f"shared by all of them, fsctl's run cannot take less than (fsctl + primaries) / cores = "
      f"{(fs_cpu + srv_fs) / cores:.2f} s: the machine's bound for this ratio is "
      f"{statistics.median(pipe) / ((fs_cpu + srv_fs) / cores):.2f}x, and fsctl's median run is "
      f"{((fs_cpu + srv_fs) / cores) / statistics.median(fs):.0%} of that bound.")
w = [json.loads(l) for l in open(f"{work}/writers.jsonl")]
wr = sorted(x["cluster_pipe_s"] / x["fsctl_s"] for x in w)
print(f"\nThe writer alone (`examples/clusterwrite.rs`: {w[0]['keys']:,} `SET ... PXAT` of fsctl's key shape "
      f"with 126-byte values, {len(w)} turns): fsctl's cluster writer (hand-kept slot map, pipelined writers per "
      f"primary) {statistics.median(x['fsctl_s'] for x in w):.3f} s, redis-rs's sync `cluster_pipe` with as many "
      f"threads {statistics.median(x['cluster_pipe_s'] for x in w):.3f} s: **{statistics.median(wr):.2f}x** "
      f"({wr[0]:.2f}-{wr[-1]:.2f}) the crate's throughput.")
print(f"\nStream: {int(rd('stream_bytes')) / 1e6:.0f} MB over 3 primaries; fsctl wrote {m['keys_written']:,} keys, "
      f"{m['bytes_written'] / 1e6:.0f} MB of vectors.\n")
print("## Memory per entity, one server: Valkey beside Redis 7.0\n")
print("`used_memory` after the run minus before (each read once the server has finished rehashing), "
      "divided by entities: fsctl's run (keys, values, expiries, the snapshot's key list, manifest and "
      "control keys) beside the same job's data writes alone, replayed by `redis-cli --pipe` into "
      "another fresh server. Same keys, same bytes.\n")
print("| server | fsctl: used_memory / entity | data keys alone (pipe) / entity | vector bytes / entity |")
print("|---|---|---|---|")
for label in ("valkey", "redis"):
    s = json.loads(rd(f"{label}.json"))["services"][0]
    e = s["entities"]
    print(f"| {rd(f'{label}.version')} | {int(rd(f'{label}.used')) / e:.1f} B | "
          f"{int(rd(f'{label}.pipe_used')) / e:.1f} B | {s['bytes_written'] / e:.0f} B |")
PY
cat bench/CLUSTER.md
