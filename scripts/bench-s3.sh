#!/usr/bin/env bash
# make bench-s3: the banking dataset (N entities, default 1M) materialized from a local S3 server
# (moto_server, from PyPI) against the same job from local disk, in alternating turns of the same
# run: wall time of each, their ratio, and the bytes fetched against the needed column chunks and
# the objects' size. Writes bench/S3.md and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
REPS=${REPS:-5}
FSCTL=target/release/fsctl
cargo build -q --release --bin fsctl --bin fsctl-datagen
moto=$(scripts/ensure-moto.sh)
venv=$(dirname "$(dirname "$moto")")

dir=$(scripts/bench-dataset.sh "bench/data/$N" "$N")
end=$(date -u -d "@$(( $(cat "$dir/ANCHOR") * 3600 ))" +%Y-%m-%dT%H:%M:%SZ)

tmp=$(mktemp -d)
s3_port=$(shuf -i 20000-40000 -n 1)
redis_ports=""
cleanup() {
  for p in $redis_ports; do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
  [ -n "${moto_pid:-}" ] && kill "$moto_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
"$moto" -H 127.0.0.1 -p "$s3_port" >"$tmp/moto.log" 2>&1 & moto_pid=$!
for _ in $(seq 600); do curl -s -o /dev/null "http://127.0.0.1:$s3_port/" && break; sleep 0.1; done
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1

# The same tables as objects under s3://bench/banking/, and a repo that reads them there.
"$venv/bin/python" - "$s3_port" "$dir/data" <<'EOF'
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1")
s3.create_bucket(Bucket="bench")
root = sys.argv[2]
for base, _, files in os.walk(root):
    for f in files:
        path = os.path.join(base, f)
        s3.upload_file(path, "bench", "banking/data/" + os.path.relpath(path, root))
EOF
s3_repo=$tmp/s3_repo
mkdir -p "$s3_repo"
sed -e "s|path: data/transactions |path: s3://bench/banking/data/transactions/ |" \
    -e "s|path: \"data/|path: \"s3://bench/banking/data/|" \
    -e "s|path: data/|path: s3://bench/banking/data/|" \
    -e "s|^materialization:|offline_store:\n  storage_options: {aws_endpoint: \"http://127.0.0.1:$s3_port\", aws_allow_http: true}\nmaterialization:|" \
    "$dir/feature_store.yaml" > "$s3_repo/feature_store.yaml"
# hot_entities stays local: warm is not measured here.
sed -i "s|path: s3://bench/banking/data/entity_popularity.parquet|path: $(pwd)/$dir/data/entity_popularity.parquet|" "$s3_repo/feature_store.yaml"
grep -q "s3://bench" "$s3_repo/feature_store.yaml"

run() { # label repo rep
  local port; port=$(shuf -i 40001-60000 -n 1)
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" \
    --dbfilename "dump-$port.rdb" --daemonize yes --logfile "$tmp/redis-$port.log"
  redis_ports="$redis_ports $port"
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
  local t0 t1; t0=$(date +%s.%N)
  FSCTL_REDIS_URL=redis://127.0.0.1:$port/0 $FSCTL -v --repo "$2" materialize --service realtime_scoring \
    --end "$end" >"$tmp/$1.$3.out" 2>"$tmp/$1.$3.err"
  t1=$(date +%s.%N)
  awk "BEGIN {print $t1 - $t0}" > "$tmp/$1.$3.seconds"
  # 1,000 entities (the first turn's first keys) read back from every turn; the keys' snapshot
  # ids differ (a file's identity is part of the id), the values must not.
  local snap; snap=$(redis-cli -p "$port" get 'fs:banking:{realtime_scoring}:current')
  [ -f "$tmp/entities" ] || redis-cli -p "$port" --scan --pattern "fs:banking:realtime_scoring:$snap:*" | \
    awk "NR <= 1000" | sed "s|^fs:banking:realtime_scoring:$snap:||" > "$tmp/entities"
  sed "s|^|fs:banking:realtime_scoring:$snap:|" "$tmp/entities" | xargs redis-cli -p "$port" mget > "$tmp/$1.$3.values"
  md5sum < "$tmp/$1.$3.values" | cut -c1-12 > "$tmp/$1.$3.sample"
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
}
for r in $(seq "$REPS"); do
  run local "$dir" "$r"
  run s3 "$s3_repo" "$r"
done

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
local_s=$(cat "$tmp"/local.*.seconds | median)
s3_s=$(cat "$tmp"/s3.*.seconds | median)
ratios=$(for r in $(seq "$REPS"); do awk "BEGIN {print $(cat "$tmp/local.$r.seconds") / $(cat "$tmp/s3.$r.seconds")}"; done)
ratio=$(echo "$ratios" | median)
# Bytes of the last S3 turn, summed over the views (the last note of each view is its total).
fetched=$(grep "bytes fetched from the object store" "$tmp/s3.$REPS.err" | \
  awk '{v=$3; f[v]=$4; n[v]=$(NF-10); o[v]=$(NF-3)} END {for (v in f) {F+=f[v]; N+=n[v]; O+=o[v]}; print F, N, O}')
read -r fetched_bytes needed_bytes object_bytes <<<"$fetched"
same=$([ "$(cat "$tmp"/local.*.sample "$tmp"/s3.*.sample | sort -u | wc -l)" = 1 ] && echo yes || echo NO)

{
  echo "# Object-store sources: local S3 (moto_server) vs local disk"
  echo
  echo "\`make bench-s3\`, $(date -u +%Y-%m-%dT%H:%M:%SZ), $N entities of the banking dataset, service"
  echo "realtime_scoring, $REPS alternating turns of each into a fresh redis-server; medians."
  echo
  echo "| | wall s |"
  echo "|---|---|"
  echo "| from local disk | $local_s |"
  echo "| from S3 (moto_server on loopback) | $s3_s |"
  echo "| **S3 throughput / local-disk throughput** (median of paired turns; target ≥ 0.7) | **$ratio** |"
  echo
  echo "Per-turn ratios: $(echo $ratios)."
  echo
  echo "| bytes | |"
  echo "|---|---|"
  echo "| fetched from the store (footers included) | $fetched_bytes |"
  echo "| needed column chunks of the kept row groups | $needed_bytes |"
  echo "| **fetched / needed** (target ≤ 1.1) | **$(awk "BEGIN {printf \"%.3f\", $fetched_bytes / $needed_bytes}")** |"
  echo "| objects' size | $object_bytes |"
  echo "| fetched / objects' size | $(awk "BEGIN {printf \"%.3f\", $fetched_bytes / $object_bytes}") |"
  echo
  echo "Same vectors from both ($(wc -l < "$tmp/entities") entities read back from every turn): $same."
  echo
  echo "This job's window keeps every row group and needs nearly every column, so it fetches about"
  echo "the objects' size; pruning by window and column is tested in tests/it/s3.rs (only the needed"
  echo "chunks of 2 of 24 row groups are fetched)."
} > bench/S3.md
cat bench/S3.md
