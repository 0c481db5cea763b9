#!/usr/bin/env bash
# Sourced by other scripts: starts a throwaway 3-primary Redis Cluster on free ports (slots
# assigned with CLUSTER ADDSLOTSRANGE, nodes joined with CLUSTER MEET: ~2 s, against ~8 s for
# redis-cli --cluster create) and stops it on exit. SERVER picks the binary (default
# redis-server; a valkey-server works the same). Sets CLUSTER_PORTS and CLUSTER_URL.
SERVER=${SERVER:-redis-server}
# A free port whose cluster bus port (port + 10000, at most 65535) is free too.
cluster_free_port() {
  local p
  for p in $(shuf -i 20000-45000 -n 50); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null &&
      ! (exec 3<>"/dev/tcp/127.0.0.1/$((p + 10000))") 2>/dev/null; then
      echo "$p"; return
    fi
  done
  return 1
}
CLUSTER_DIR=$(mktemp -d)
CLUSTER_PORTS=()
for i in 0 1 2; do
  port=$(cluster_free_port)
  mkdir -p "$CLUSTER_DIR/$i"
  "$SERVER" --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$CLUSTER_DIR/$i" \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
    --daemonize yes --pidfile "$CLUSTER_DIR/$i/pid" --logfile "$CLUSTER_DIR/$i/log"
  CLUSTER_PORTS+=("$port")
done
stop_throwaway_cluster() {
  for p in "${CLUSTER_PORTS[@]}"; do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
  rm -rf "$CLUSTER_DIR"
}
trap stop_throwaway_cluster EXIT
for p in "${CLUSTER_PORTS[@]}"; do
  for _ in $(seq 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.05; done
done
redis-cli -p "${CLUSTER_PORTS[0]}" cluster addslotsrange 0 5460 >/dev/null
redis-cli -p "${CLUSTER_PORTS[1]}" cluster addslotsrange 5461 10922 >/dev/null
redis-cli -p "${CLUSTER_PORTS[2]}" cluster addslotsrange 10923 16383 >/dev/null
for p in "${CLUSTER_PORTS[@]:1}"; do redis-cli -p "${CLUSTER_PORTS[0]}" cluster meet 127.0.0.1 "$p" >/dev/null; done
for _ in $(seq 300); do
  ok=0
  for p in "${CLUSTER_PORTS[@]}"; do
    info=$(redis-cli -p "$p" cluster info 2>/dev/null || true)
    if grep -q cluster_state:ok <<<"$info" && grep -q cluster_known_nodes:3 <<<"$info"; then ok=$((ok + 1)); fi
  done
  [ "$ok" = 3 ] && break
  sleep 0.05
done
[ "$ok" = 3 ] || { echo "the throwaway cluster did not come up" >&2; exit 1; }
CLUSTER_URL=$(printf 'redis://127.0.0.1:%s,' "${CLUSTER_PORTS[@]}")
CLUSTER_URL=${CLUSTER_URL%,}
export CLUSTER_URL
