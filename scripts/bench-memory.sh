#!/usr/bin/env bash
# make bench-memory: peak RSS and wall time of materialize at scale.
#  - 10M entities (BIG) with the default partitions against --memory-budget 1G;
#  - 1M entities with 3 rows per entity against 30 (the rows' cost: one pass decodes every row).
# Alternating turns into a fresh redis-server each; medians. Writes bench/MEMORY.md and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
BIG=${BIG:-10000000}
N=${N:-1000000}
REPS=${REPS:-2}
BUDGET=${BUDGET:-1G}
FSCTL=target/release/fsctl
cargo build -q --release --bin fsctl --bin fsctl-datagen

data() { scripts/bench-dataset.sh "$1" "$2" --rows-per-entity "$3" >/dev/null; } # dir entities rows-per-entity
data "bench/data/$BIG" "$BIG" 3
data "bench/data/$N" "$N" 3
data "bench/data/${N}x30" "$N" 30

tmp=$(mktemp -d)
port=$(shuf -i 40001-60000 -n 1)
cleanup() { redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" \
  --daemonize yes --logfile "$tmp/redis.log" >/dev/null
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done

run() { # label dir rep [flags...]; FLUSH=0 keeps what the last run committed
  local label=$1 dir=$2 rep=$3; shift 3
  local end; end=$(date -u -d "@$(( $(cat "$dir/ANCHOR") * 3600 ))" +%Y-%m-%dT%H:%M:%SZ)
  [ "${FLUSH:-1}" = 0 ] || redis-cli -p "$port" flushall >/dev/null
  FSCTL_REDIS_URL=redis://127.0.0.1:$port/0 /usr/bin/time -f "%M %e" -o "$tmp/$label.$rep" \
    $FSCTL -q --format json --repo "$dir" materialize --service realtime_scoring --end "$end" "$@" > "$tmp/$label.$rep.json"
  python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['services'][0]; print(s['partitions'], s['entities'], s['bytes_written'])" \
    "$tmp/$label.$rep.json" > "$tmp/$label.$rep.report"
}
for r in $(seq "$REPS"); do
  # First runs (into an empty server, sized from their rows), then scheduled ones: --force
  # rewrites the same snapshot over the committed one, so both overwrite keys alike, and the
  # run is sized like (and `--scan auto` counts rows per entity against) the current snapshot.
  run big_first "bench/data/$BIG" "$r" --memory-budget "$BUDGET"
  run big_fresh "bench/data/$BIG" "$r"
  FLUSH=0 run big_default "bench/data/$BIG" "$r" --force
  FLUSH=0 run big_budget "bench/data/$BIG" "$r" --memory-budget "$BUDGET" --force
  run rows3_first "bench/data/$N" "$r"
  FLUSH=0 run rows3 "bench/data/$N" "$r" --force
  run rows30_first "bench/data/${N}x30" "$r"
  FLUSH=0 run rows30 "bench/data/${N}x30" "$r" --force
done

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
rss() { for r in $(seq "$REPS"); do awk '{print $1 / 1024}' "$tmp/$1.$r"; done | median; }
wall() { for r in $(seq "$REPS"); do awk '{print $2}' "$tmp/$1.$r"; done | median; }
parts() { cut -d' ' -f1 "$tmp/$1.1.report"; }
same() { [ "$(cut -d' ' -f2- "$tmp/$1.1.report")" = "$(cut -d' ' -f2- "$tmp/$2.1.report")" ] && echo yes || echo NO; }
ratio() { awk "BEGIN {printf \"%.2f\", $1 / $2}"; }

{
  echo "# Memory at scale"
  echo
  echo "\`make bench-memory\`, $(date -u +%Y-%m-%dT%H:%M:%SZ), banking dataset, service realtime_scoring,"
  echo "$REPS turns; medians of peak RSS (\`/usr/bin/time\`) and wall time. A *first* run writes into an"
  echo "empty server and is sized from its rows; a *scheduled* one reruns the job over its committed"
  echo "snapshot (\`--force\`, the same keys overwritten) and is sized like it, as a run on a schedule is."
  echo
  echo "| run | partitions | peak RSS MB | wall s |"
  echo "|---|---|---|---|"
  echo "| $BIG entities, first, default | $(parts big_fresh) | $(rss big_fresh) | $(wall big_fresh) |"
  echo "| $BIG entities, first, --memory-budget $BUDGET | $(parts big_first) | $(rss big_first) | $(wall big_first) |"
  echo "| $BIG entities, scheduled, default | $(parts big_default) | $(rss big_default) | $(wall big_default) |"
  echo "| $BIG entities, scheduled, --memory-budget $BUDGET | $(parts big_budget) | $(rss big_budget) | $(wall big_budget) |"
  echo "| $N entities, 3 rows each, first | $(parts rows3_first) | $(rss rows3_first) | $(wall rows3_first) |"
  echo "| $N entities, 3 rows each, scheduled | $(parts rows3) | $(rss rows3) | $(wall rows3) |"
  echo "| $N entities, 30 rows each, first (one pass) | $(parts rows30_first) | $(rss rows30_first) | $(wall rows30_first) |"
  echo "| $N entities, 30 rows each, scheduled (auto: two passes) | $(parts rows30) | $(rss rows30) | $(wall rows30) |"
  echo
  echo "- **$BIG entities under --memory-budget $BUDGET**, scheduled: peak RSS **$(rss big_budget) MB** (target ≤ 1024),"
  echo "  throughput **$(ratio "$(wall big_default)" "$(wall big_budget)")x** the default run's (target ≥ 0.9); same entities"
  echo "  and bytes: $(same big_default big_budget). A first run, with no snapshot to size from, overestimates"
  echo "  from its rows: peak RSS $(rss big_first) MB, throughput $(ratio "$(wall big_fresh)" "$(wall big_first)")x the first default run's."
  echo "- **Rows per entity x10** ($N entities), scheduled: peak RSS **$(ratio "$(rss rows30)" "$(rss rows3)")x** (target ≤ 1.10),"
  echo "  wall time **$(ratio "$(wall rows30)" "$(wall rows3)")x** (target ≤ 2.5). First runs (one pass each):"
  echo "  RSS $(ratio "$(rss rows30_first)" "$(rss rows3_first)")x, wall time $(ratio "$(wall rows30_first)" "$(wall rows3_first)")x."
} > bench/MEMORY.md
cat bench/MEMORY.md
