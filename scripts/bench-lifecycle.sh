#!/usr/bin/env bash
# make bench-lifecycle: the steady state under a schedule (SPEC §3.1). Six hourly runs of the
# banking job (N entities, default 1M) into one server with keep_snapshots 2 and a 1 s grace,
# passed before each next run as it is on an hourly schedule; on redis-server and on
# valkey-server. After each run: used_memory once the retired keys are gone, the size of the
# server's key tables (MEMORY STATS), and the server's own time in the run's commands
# (INFO commandstats, reset before the run): the reference for what retirement costs Redis
# itself, measured in the same run. Writes bench/LIFECYCLE.md and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
FSCTL=$(pwd)/target/release/fsctl
cargo build -q --release --bin fsctl --bin fsctl-datagen

dir=$(scripts/bench-dataset.sh "bench/data/$N" "$N")
anchor=$(cat "$dir/ANCHOR")
WORK=bench/work/lifecycle
rm -rf "$WORK"; mkdir -p "$WORK"
tmp=$(mktemp -d)
ports=""
cleanup() {
  for p in $ports; do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
repo=$tmp/repo; mkdir -p "$repo"
ln -s "$(realpath "$dir/data")" "$repo/data"
sed 's/^  ttl_jitter: 0.2$/  ttl_jitter: 0.2\n  keep_snapshots: 2\n  retire_grace: 1s/' "$dir/feature_store.yaml" > "$repo/feature_store.yaml"
grep -q '^  keep_snapshots: 2$' "$repo/feature_store.yaml" || { echo "could not set keep_snapshots" >&2; exit 1; }

used_memory() { redis-cli -p "$1" info memory | awk -F: '/^used_memory:/ {print $2+0}'; }
steady() { # server label
  local port; port=$(shuf -i 20000-60000 -n 1)
  "$1" --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" \
    --dbfilename "dump-$port.rdb" --daemonize yes --logfile "$tmp/server-$port.log" >/dev/null
  ports="$ports $port"
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
  redis-cli -p "$port" ping >/dev/null || { echo "$1 did not start on port $port" >&2; exit 1; }
  local out=$WORK/$2; mkdir -p "$out"
  "$1" --version > "$out/version"
  redis-cli -p "$port" info memory | tr -d '\r' | awk -F: '/^mem_allocator:/ {print $2}' > "$out/allocator"
  used_memory "$port" > "$out/base"
  for i in 1 2 3 4 5 6; do
    local end; end=$(date -u -d "@$(( (anchor - 7 + i) * 3600 ))" +%Y-%m-%dT%H:%M:%SZ)
    redis-cli -p "$port" config resetstat >/dev/null
    FSCTL_REDIS_URL=redis://127.0.0.1:$port/0 /usr/bin/time -f "%e %M" -o "$out/time.$i" \
      "$FSCTL" -q --repo "$repo" --format json materialize --service realtime_scoring --end "$end" > "$out/run.$i.json"
    redis-cli -p "$port" info commandstats | tr -d '\r' > "$out/commandstats.$i"
    # The grace passes; the retired keys go (deleted at once, or expired by the server).
    local want; want=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["services"][0]; print(2 * s["entities"] + 16)' "$out/run.$i.json")
    for _ in $(seq 1200); do
      [ "$(redis-cli -p "$port" dbsize)" -le "$want" ] && break; sleep 0.1
    done
    used_memory "$port" > "$out/used.$i"
    redis-cli -p "$port" memory stats | tr -d '\r' > "$out/memory_stats.$i"
  done
  # The reference: the server alone deleting one snapshot's keys through redis-cli --pipe, in
  # 500-key DELs as fsctl sends them, in the same state as a retirement: three snapshots alive,
  # the oldest deleted. Three rounds, one per order: as its run wrote them (its job's
  # --emit-resp stream, with the run's partitions), by entity (fsctl's order before it kept the
  # written one), and as KEYS lists them. Each round's run keeps three snapshots (no retirement
  # of live keys) and writes an hour later than the one before.
  sed -i 's/^  keep_snapshots: 2$/  keep_snapshots: 3/' "$repo/feature_store.yaml"
  local round=0 order oldest t0 t1
  for order in written numeric listed; do
    round=$((round + 1))
    FSCTL_REDIS_URL=redis://127.0.0.1:$port/0 "$FSCTL" -q --repo "$repo" --format json materialize --service realtime_scoring \
      --end "$(date -u -d "@$(( (anchor + round - 1) * 3600 ))" +%Y-%m-%dT%H:%M:%SZ)" --allow-future-end > "$out/round.$round.json"
    # The oldest alive: run 5's in the first round, run 6's, then the first round's.
    local of=$out/run.$((round + 4)).json
    [ "$round" = 3 ] && of=$out/round.1.json
    oldest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["services"][0]["snapshot"])' "$of")
    case $order in
      written)
        local parts end5
        parts=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["services"][0]["partitions"])' "$of")
        end5=$(date -u -d "@$(( (anchor - 2) * 3600 ))" +%Y-%m-%dT%H:%M:%SZ)
        FSCTL_REDIS_URL=redis://127.0.0.1:$port/0 "$FSCTL" -q --repo "$repo" materialize --service realtime_scoring \
          --end "$end5" --partitions "$parts" --emit-resp "$tmp/written.stream" --force > /dev/null
        python3 scripts/resp_dels.py --written "fs:banking:realtime_scoring:$oldest:" < "$tmp/written.stream" > "$tmp/dels.resp"
        rm -f "$tmp/written.stream" ;;
      numeric)
        redis-cli -p "$port" --raw keys "fs:banking:realtime_scoring:$oldest:*" | python3 scripts/resp_dels.py --numeric > "$tmp/dels.resp" ;;
      listed)
        redis-cli -p "$port" --raw keys "fs:banking:realtime_scoring:$oldest:*" | python3 scripts/resp_dels.py > "$tmp/dels.resp" ;;
    esac
    redis-cli -p "$port" config resetstat >/dev/null
    t0=$(date +%s.%N)
    redis-cli -p "$port" --pipe < "$tmp/dels.resp" > "$out/pipe.$order.log"
    t1=$(date +%s.%N)
    awk "BEGIN {print $t1 - $t0}" > "$out/pipe_seconds.$order"
    redis-cli -p "$port" info commandstats | tr -d '\r' > "$out/commandstats.pipe.$order"
    grep -q "errors: 0, replies: $(grep -c '^\*' "$tmp/dels.resp")" "$out/pipe.$order.log" || { echo "pipe $order: $(tail -1 "$out/pipe.$order.log")" >&2; exit 1; }
    rm -f "$tmp/dels.resp"
  done
  sed -i 's/^  keep_snapshots: 3$/  keep_snapshots: 2/' "$repo/feature_store.yaml"
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
}
steady redis-server redis
steady "$(scripts/ensure-valkey.sh)" valkey

python3 - "$WORK" "$N" > bench/LIFECYCLE.md <<'PY'
import datetime, json, statistics, sys
work, n = sys.argv[1], int(sys.argv[2])
rd = lambda *p: open("/".join((work,) + p)).read()

def usec(stats, cmd):
    for line in stats.splitlines():
        if line.startswith(f"cmdstat_{cmd}:"):
            return int(line.split("usec=")[1].split(",")[0]), int(line.split("calls=")[1].split(",")[0])
    return 0, 0

def key_tables(stats):
    # MEMORY STATS is a flat list of names and values, one per line.
    lines = stats.splitlines()
    return sum(int(lines[i + 1]) for i, l in enumerate(lines[:-1])
               if l in ("overhead.hashtable.main", "overhead.hashtable.expires"))

print("# Snapshot lifecycle: the steady state under a schedule\n")
print(f"`make bench-lifecycle` (also part of `make bench`), "
      f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, this 2-core machine. "
      f"Six hourly runs of the banking job, {n:,} entities, into one server with keep_snapshots 2 and "
      "retire_grace 1s, the grace passed before each next run (as on an hourly schedule). used_memory "
      "is read once the retired keys are gone. The server's own time per command comes from "
      "`INFO commandstats`, reset before each run: it is the reference for what retirement costs the "
      "server itself, measured in the same run. *Rest of run* is the wall time without retirement.\n")
for label in ("redis", "valkey"):
    version = rd(label, "version").split()
    alloc = rd(label, "allocator").strip()
    base = int(rd(label, "base"))
    rows = []
    for i in range(1, 7):
        s = json.loads(rd(label, f"run.{i}.json"))["services"][0]
        wall = float(rd(label, f"time.{i}").split()[0])
        stats = rd(label, f"commandstats.{i}")
        ret = s.get("retired") or {}
        rows.append(dict(
            wall=wall, keys=ret.get("keys", 0), ret=ret.get("ms", 0) / 1000,
            dele=usec(stats, "del")[0] / 1e6, set=usec(stats, "set")[0] / 1e6,
            sets=usec(stats, "set")[1], used=int(rd(label, f"used.{i}")) - base,
            tables=key_tables(rd(label, f"memory_stats.{i}")), entities=s["entities"]))
    one, one_tables = rows[0]["used"], rows[0]["tables"]
    print(f"## {version[0]} {version[2].removeprefix('v=')} ({alloc})\n")
    print("| run | wall s | retired keys | retirement s | server's DEL s | server's SET s "
          "| retirement / rest of run | server's DEL / rest of run | used_memory MB | × one snapshot "
          "| key tables MB | × one snapshot, without key tables |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for i, r in enumerate(rows, 1):
        rest = r["wall"] - r["ret"]
        share = f"{r['ret'] / rest:.2f}" if r["keys"] else "-"
        floor = f"{r['dele'] / rest:.2f}" if r["keys"] else "-"
        print(f"| {i} | {r['wall']:.2f} | {r['keys']:,} | {r['ret']:.2f} | {r['dele']:.2f} | {r['set']:.2f} "
              f"| {share} | {floor} | {r['used'] / 1e6:.1f} | {r['used'] / one:.2f} | {r['tables'] / 1e6:.1f} "
              f"| {(r['used'] - r['tables']) / (one - one_tables):.2f} |")
    retiring = [r for r in rows if r["keys"]]
    last = rows[-1]
    med = lambda f: statistics.median(f(r) for r in retiring)
    print(f"\n- After the sixth run: **{last['used'] / (2 * one):.2f}** × keep_snapshots × one snapshot "
          f"({last['used'] / 1e6:.1f} MB against 2 × {one / 1e6:.1f} MB; target ≤ 1.05). Without the "
          f"server's key tables: {(last['used'] - last['tables']) / (2 * (one - one_tables)):.2f} ×; "
          f"the tables are {last['tables'] / 1e6:.1f} MB against 2 × {one_tables / 1e6:.1f} MB for one snapshot.")
    print(f"- Retirement adds **{med(lambda r: r['ret'] / (r['wall'] - r['ret'])):.2f}** of the rest of a "
          f"run (median; target ≤ 0.20). The server's own time in the DELs alone is "
          f"{med(lambda r: r['dele'] / (r['wall'] - r['ret'])):.2f} of it: fsctl's retirement takes "
          f"{med(lambda r: r['ret'] / r['dele']):.2f} × the server's DEL time.")
    pipe = {o: (float(rd(label, f"pipe_seconds.{o}")), usec(rd(label, f"commandstats.pipe.{o}"), "del")[0] / 1e6)
            for o in ("written", "numeric", "listed")}
    rest = med(lambda r: r["wall"] - r["ret"])
    w, nu, li = pipe["written"], pipe["numeric"], pipe["listed"]
    print(f"- The server alone (`redis-cli --pipe`, 500-key DELs; three snapshots alive, the oldest "
          f"deleted, as in a retirement) takes {w[0]:.2f} s in the order the keys were written "
          f"({w[1]:.2f} s of it in the DELs themselves), {nu[0]:.2f} s ({nu[1]:.2f} s) in entity order "
          f"(fsctl's order before 2026-12-02) and {li[0]:.2f} s ({li[1]:.2f} s) in the order KEYS lists "
          f"them. fsctl deletes in the order written: its retirement takes "
          f"**{med(lambda r: r['ret']) / w[0]:.2f} ×** the pipe's time in that order, and the pipe alone "
          f"would add {w[0] / rest:.2f} of the rest of a run.")
    print(f"- Per key, the server spends {med(lambda r: r['dele'] / r['keys'] * 1e6):.2f} µs deleting "
          f"and {med(lambda r: r['set'] / r['sets'] * 1e6):.2f} µs writing (medians over the retiring runs).\n")
PY
cat bench/LIFECYCLE.md
