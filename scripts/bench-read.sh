#!/usr/bin/env bash
# make bench-read: read latency of both clients on loopback, each against its raw reference in
# the same run (Rust: FeatureClient vs raw MGET; Python: fsctl_client vs redis-py MGET + decode;
# both: the LRU hit path), on 100k entities of the banking dataset. Writes bench/READ.md.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${READ_N:-100000}
dir=bench/data/read-$N
cargo build -q --release --bin fsctl --bin fsctl-datagen --example readbench
scripts/bench-dataset.sh "$dir" "$N" >/dev/null
venv=$(scripts/ensure-python.sh)
port=$(shuf -i 20000-50000 -n 1)
tmp=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" --daemonize yes \
  --logfile "$tmp/log" --pidfile "$tmp/pid"
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
url=redis://127.0.0.1:$port/0
FSCTL_REDIS_URL=$url target/release/fsctl -q --repo "$dir" materialize --service realtime_scoring >/dev/null
# The machine is shared: ROUNDS turns of each, the report takes the median of every figure.
rounds=${ROUNDS:-5}
for r in $(seq "$rounds"); do
  FSCTL_REDIS_URL=$url target/release/examples/readbench "$dir" realtime_scoring 2000 >> "$tmp/rust.jsonl"
  "$venv/bin/python" python/bench/readbench.py "$url" banking realtime_scoring 2000 >> "$tmp/python.jsonl"
done
python3 - "$tmp/rust.jsonl" "$tmp/python.jsonl" "$N" "$rounds" > bench/READ.md <<'PY'
import json, statistics, sys
def medians(path):
    rows = [json.loads(l) for l in open(path)]
    out = []
    for batch in sorted({r["batch"] for r in rows}):
        same = [r for r in rows if r["batch"] == batch]
        out.append({k: statistics.median(r[k] for r in same) for k in same[0]})
    return out
rust, py = medians(sys.argv[1]), medians(sys.argv[2])
print(f"# Read latency on loopback ({int(sys.argv[3]):,} entities, realtime_scoring)\n")
print(f"Each client against its raw reference, alternating turns in the same run; µs; every figure "
      f"is the median of {sys.argv[4]} rounds of 2,000 reads per batch size. For context only: "
      "Feast's published precomputed read is 980 µs p50 / 1,700 µs p99 for one entity.\n")
print("## Rust: FeatureClient vs raw MGET (no decode)\n")
print("| entities | client p50 | client p99 | MGET p50 | MGET p99 | **p99 ratio** | MGET+decode p99 | p99 ratio to it | LRU hit p50 | LRU hit p99 | **LRU p99 / MGET p50** |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in rust:
    print(f"| {r['batch']} | {r['client_p50_us']:.0f} | {r['client_p99_us']:.0f} | {r['mget_p50_us']:.0f} | "
          f"{r['mget_p99_us']:.0f} | **{r['p99_ratio']:.2f}** | {r['mget_decode_p99_us']:.0f} | "
          f"{r['p99_ratio_to_mget_decode']:.2f} | {r['lru_p50_us']:.1f} | {r['lru_p99_us']:.1f} | "
          f"**{r['lru_p99_over_mget_p50']:.3f}** |")
print("\n## Python: fsctl_client vs redis-py MGET + msgpack decode\n")
print("| entities | client p50 | client p99 | MGET+decode p50 | MGET+decode p99 | **p99 ratio** | LRU hit p50 | LRU hit p99 | **LRU p99 / MGET p50** |")
print("|---|---|---|---|---|---|---|---|---|")
for r in py:
    print(f"| {r['batch']} | {r['client_p50_us']:.0f} | {r['client_p99_us']:.0f} | {r['mget_decode_p50_us']:.0f} | "
          f"{r['mget_decode_p99_us']:.0f} | **{r['p99_ratio']:.2f}** | {r['lru_p50_us']:.1f} | {r['lru_p99_us']:.1f} | "
          f"**{r['lru_p99_over_mget_p50']:.3f}** |")
PY
cat bench/READ.md
