#!/usr/bin/env bash
# make bench-feast: fsctl's Feast layout against Feast 0.67 itself and against redis-cli --pipe,
# each measured in the same run on the same data (scripts/feast-bench.py: three views, two rows
# per entity and view). Writes bench/FEAST.md and prints it.
#   1. N entities (default 200k): `feast materialize` and `fsctl materialize` of the same window
#      into fresh servers, without and with a precompute_online service (Feast then rebuilds the
#      vectors from Redis); wall time and peak RSS of each.
#   2. BIG entities (default 1M): fsctl end to end against `redis-cli --pipe` replaying fsctl's
#      own command stream for the same job (the limit of this layout), REPS times, medians.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${FEAST_N:-200000}
BIG=${FEAST_BIG:-1000000}
REPS=${REPS:-3}
FSCTL=$(pwd)/target/release/fsctl
WORK=bench/work/feast
VENV=$(scripts/ensure-python.sh)
mkdir -p "$WORK"
cargo build -q --release --bin fsctl

start_redis() { # sets PORT
  PORT=$(shuf -i 20000-60000 -n 1)
  local d; d=$(mktemp -d)
  redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$d" --daemonize yes \
    --logfile "$d/log" --pidfile "$d/pid"
  SERVERS="${SERVERS:-} $PORT"
  for _ in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && return; sleep 0.05; done
  echo "redis-server did not start" >&2; exit 1
}
stop() { redis-cli -p "$1" shutdown nosave >/dev/null 2>&1 || true; }
stop_all() { for p in ${SERVERS:-}; do stop "$p"; done; }
trap stop_all EXIT
now() { date +%s.%N; }
START=2025-11-21T00:00:00Z
END=2025-11-23T00:00:00Z

project() { # dir entities [--precompute]
  [ -f "$1/data/registry.db" ] || "$VENV/bin/python" scripts/feast-bench.py "$1" --entities "$2" ${3:-}
}

timed() { # out-prefix command...: wall seconds and peak RSS (KiB) into out-prefix.time
  local out=$1; shift
  /usr/bin/time -f "%e %M" -o "$out.time" "$@" > "$out.log" 2>&1
}

# 1. Against Feast.
for kind in plain precompute; do
  dir=bench/data/feast-$kind-$N
  project "$dir" "$N" "$([ $kind = precompute ] && echo --precompute)"
  start_redis; a=$PORT
  # Feast rewrites its registry after a materialize: it runs on a copy.
  rm -rf "$WORK/feast-repo"; cp -r "$dir" "$WORK/feast-repo"
  FSBENCH_REDIS=127.0.0.1:$a FEAST_USAGE=False timed "$WORK/feast-$kind" \
    "$VENV/bin/feast" -c "$WORK/feast-repo" materialize "${START%Z}" "${END%Z}"
  echo "$(redis-cli -p "$a" dbsize)" > "$WORK/feast-$kind.keys"
  stop "$a"
  start_redis; b=$PORT
  FSBENCH_REDIS=127.0.0.1:$b timed "$WORK/fsctl-$kind" \
    "$FSCTL" -q --repo "$dir" materialize --start "$START" --end "$END"
  echo "$(redis-cli -p "$b" dbsize)" > "$WORK/fsctl-$kind.keys"
  stop "$b"
done

# 2. Against redis-cli --pipe.
dir=bench/data/feast-plain-$BIG
project "$dir" "$BIG"
FSBENCH_REDIS=127.0.0.1:1 "$FSCTL" -q --repo "$dir" materialize --start "$START" --end "$END" \
  --emit-resp "$WORK/stream.resp" > /dev/null
for r in $(seq "$REPS"); do
  start_redis; a=$PORT
  FSBENCH_REDIS=127.0.0.1:$a timed "$WORK/big-fsctl.$r" \
    "$FSCTL" -q --repo "$dir" materialize --start "$START" --end "$END"
  stop "$a"
  start_redis; b=$PORT
  t0=$(now); redis-cli -p "$b" --pipe < "$WORK/stream.resp" > "$WORK/big-pipe.$r.log"; t1=$(now)
  awk "BEGIN {print $t1 - $t0}" > "$WORK/big-pipe.$r.seconds"
  stop "$b"
done
stream_bytes=$(stat -c %s "$WORK/stream.resp")
rm -f "$WORK/stream.resp"

"$VENV/bin/python" - "$WORK" "$N" "$BIG" "$REPS" "$stream_bytes" > bench/FEAST.md <<'EOF'
import statistics, sys
from pathlib import Path
work, n, big, reps, stream = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
def t(name):
    s, kb = (work / f"{name}.time").read_text().split()[-2:]
    return float(s), int(kb) / 1024
print("# fsctl's Feast layout: against Feast 0.67 and against redis-cli --pipe\n")
print("Written by `make bench-feast` (scripts/bench-feast.sh); every figure of a table was measured")
print("in the same run on this machine (shared and noisy: read the ratios).\n")
print(f"## {n:,} entities, 3 views, 2 rows per entity and view: `feast materialize` vs `fsctl materialize`\n")
print("| job | Feast s | fsctl s | speed-up | Feast peak RSS MiB | fsctl peak RSS MiB | RSS ratio | keys (Feast / fsctl) |")
print("|---|---|---|---|---|---|---|---|")
for kind, label in (("plain", "materialize"), ("precompute", "materialize + precompute_online")):
    fs, fm = t(f"feast-{kind}")
    cs, cm = t(f"fsctl-{kind}")
    fk = (work / f"feast-{kind}.keys").read_text().strip()
    ck = (work / f"fsctl-{kind}.keys").read_text().strip()
    print(f"| {label} | {fs:.1f} | {cs:.2f} | {fs / cs:.0f}x | {fm:.0f} | {cm:.0f} | {cm / fm:.2f} | {fk} / {ck} |")
print("\nfsctl's key count includes its own manifests (the entity's unit and each of its three views).\n")
print(f"## {big:,} entities: fsctl end to end against `redis-cli --pipe` of the same command stream\n")
fsctl = [t(f"big-fsctl.{r}")[0] for r in range(1, reps + 1)]
pipe = [float((work / f"big-pipe.{r}.seconds").read_text()) for r in range(1, reps + 1)]
ratios = [p / f for p, f in zip(pipe, fsctl)]
print("| | median s | runs |")
print("|---|---|---|")
print(f"| fsctl materialize (read, join, encode, write, manifest) | {statistics.median(fsctl):.2f} | {', '.join(f'{x:.2f}' for x in fsctl)} |")
print(f"| redis-cli --pipe of fsctl's stream ({stream / 1e6:.0f} MB, one EVALSHA per entity) | {statistics.median(pipe):.2f} | {', '.join(f'{x:.2f}' for x in pipe)} |")
print(f"\nfsctl runs at **{statistics.median(ratios):.2f}x** the speed of replaying its own command stream (median of paired ratios).")
EOF
cat bench/FEAST.md
