#!/usr/bin/env bash
# make bench-shards: the banking job (N entities, default 1M) as one unsharded run against the
# same job as 4 shard processes side by side (examples/airflow/materialize_sharded.sh, xargs -P)
# plus one commit, in alternating turns of the same run. On one 2-core machine shards speed
# nothing up (each reads every file's key columns and the cores are shared); the point is that
# the bytes and expiries are identical, a shard holds a quarter of the entities in memory, and
# the commit is cheap. Writes bench/SHARDS.md and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
REPS=${REPS:-3}
SHARDS=${SHARDS:-4}
FSCTL=$(pwd)/target/release/fsctl
cargo build -q --release --bin fsctl --bin fsctl-datagen

dir=$(scripts/bench-dataset.sh "bench/data/$N" "$N")
end=$(date -u -d "@$(( $(cat "$dir/ANCHOR") * 3600 ))" +%Y-%m-%dT%H:%M:%SZ)

tmp=$(mktemp -d)
redis_ports=""
cleanup() {
  for p in $redis_ports; do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
start_redis() {
  local port; port=$(shuf -i 40001-60000 -n 1)
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" \
    --dbfilename "dump-$port.rdb" --daemonize yes --logfile "$tmp/redis-$port.log" \
    --enable-debug-command local >/dev/null
  redis_ports="$redis_ports $port"
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
  echo "$port"
}
# A digest of every data key with its value and expiry (DEBUG DIGEST covers all three), after
# the control keys are gone: manifests carry times, and the sharded run has shard manifests.
data_digest() {
  redis-cli -p "$1" --scan --pattern 'fs:banking:{*' | xargs -r -n 500 redis-cli -p "$1" del >/dev/null
  redis-cli -p "$1" debug digest
}
now() { date +%s.%N; }
# What the script runs as fsctl: each shard under /usr/bin/time (its peak RSS), the commit timed.
cat > "$tmp/timed-fsctl" <<X
#!/usr/bin/env bash
case " \$* " in
  *" --shard "*) exec /usr/bin/time -f %M -a -o "$tmp/shard.rss" "$FSCTL" "\$@" ;;
esac
t=\$(date +%s.%N)
"$FSCTL" "\$@"
awk "BEGIN {print \$(date +%s.%N) - \$t}" >> "$tmp/commit.seconds"
X
chmod +x "$tmp/timed-fsctl"
for r in $(seq "$REPS"); do
  port=$(start_redis)
  t0=$(now)
  FSCTL_REDIS_URL=redis://127.0.0.1:$port/0 /usr/bin/time -f %M -o "$tmp/whole.$r.rss" \
    "$FSCTL" --repo "$dir" materialize --service realtime_scoring --end "$end" >/dev/null
  awk "BEGIN {print $(now) - $t0}" > "$tmp/whole.$r.seconds"
  redis-cli -p "$port" get 'fs:banking:{realtime_scoring}:current' > "$tmp/whole.$r.snapshot"
  data_digest "$port" > "$tmp/whole.$r.digest"
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true

  port=$(start_redis)
  t0=$(now)
  FSCTL="$tmp/timed-fsctl" FSCTL_REDIS_URL=redis://127.0.0.1:$port/0 \
    examples/airflow/materialize_sharded.sh "$end" "$SHARDS" -- --repo "$dir" --service realtime_scoring -q
  awk "BEGIN {print $(now) - $t0}" > "$tmp/sharded.$r.seconds"
  redis-cli -p "$port" get 'fs:banking:{realtime_scoring}:current' > "$tmp/sharded.$r.snapshot"
  data_digest "$port" > "$tmp/sharded.$r.digest"
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
done

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
whole_s=$(cat "$tmp"/whole.*.seconds | median)
sharded_s=$(cat "$tmp"/sharded.*.seconds | median)
commit_s=$(median < "$tmp/commit.seconds")
ratio=$(for r in $(seq "$REPS"); do awk "BEGIN {print $(cat "$tmp/sharded.$r.seconds") / $(cat "$tmp/whole.$r.seconds")}"; done | median)
whole_rss=$(cat "$tmp"/whole.*.rss | awk '{print $1 / 1024}' | median)
shard_rss=$(awk '{print $1 / 1024}' "$tmp/shard.rss" | sort -g | tail -1)
same_snapshot=$([ "$(cat "$tmp"/*.snapshot | sort -u | wc -l)" = 1 ] && echo yes || echo NO)
same_data=$([ "$(cat "$tmp"/*.digest | sort -u | wc -l)" = 1 ] && echo yes || echo NO)

{
  echo "# Sharded runs: $SHARDS shard processes + one commit vs one unsharded run"
  echo
  echo "\`make bench-shards\`, $(date -u +%Y-%m-%dT%H:%M:%SZ), $N entities of the banking dataset, service"
  echo "realtime_scoring, $REPS alternating turns of each into a fresh redis-server; medians. The"
  echo "shards run side by side on this machine's $(nproc) cores through"
  echo "\`examples/airflow/materialize_sharded.sh\` (xargs -P $SHARDS)."
  echo
  echo "| | wall s | peak RSS MB |"
  echo "|---|---|---|"
  echo "| one unsharded run | $whole_s | $whole_rss |"
  echo "| $SHARDS shards side by side + commit | $sharded_s | $shard_rss (largest shard) |"
  echo "| of which the commit (plan, sum, gate, flip, retire) | $commit_s | |"
  echo "| **sharded / unsharded wall time** (median of paired turns) | **$ratio** | |"
  echo
  echo "Same snapshot id in every turn: $same_snapshot. Same data keys, values and expiries"
  echo "(\`DEBUG DIGEST\` of the data keys) in every turn: $same_data."
  echo
  echo "On one machine the shards share its cores and each reads every file's columns, so sharding"
  echo "costs time here; across machines each shard's wall time and memory are its own."
} > bench/SHARDS.md
cat bench/SHARDS.md
