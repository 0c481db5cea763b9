#!/usr/bin/env python3
"""Redis's memory per key by value size, for keys as long as fsctl's, each SET with PXAT.

Usage: redis_memory_probe.py PORT KEY_BYTES COUNT VALUE_BYTES...
Prints one JSON line per value size: {"value_bytes", "key_bytes", "keys", "bytes_per_key"}.
It shows where a per-entity memory target falls for the key that SPEC §3 fixes: what the
vector's size would have to be, measured rather than computed from allocator classes.
"""

import json
import subprocess
import sys


def redis_cli(port, *args, data=None):
    return subprocess.run(
        ["redis-cli", "-p", port, *args], input=data, capture_output=True, check=True
    ).stdout


def used_memory(port):
    for line in redis_cli(port, "info", "memory").decode().splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    raise SystemExit("redis-cli info memory: no used_memory")


def bulk(b):
    return b"$%d\r\n%s\r\n" % (len(b), b)


def main():
    port, key_bytes, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    expiry = b"4102444800000"  # 2100-01-01: nothing expires while it is measured
    for value_bytes in map(int, sys.argv[4:]):
        redis_cli(port, "flushall")
        base = used_memory(port)
        value = bulk(b"v" * value_bytes)
        stream = b"".join(
            b"*5\r\n$3\r\nSET\r\n"
            + bulk(b"%0*d" % (key_bytes, i))
            + value
            + b"$4\r\nPXAT\r\n"
            + bulk(expiry)
            for i in range(count)
        )
        redis_cli(port, "--pipe", data=stream)
        per_key = (used_memory(port) - base) / count
        print(
            json.dumps(
                {
                    "value_bytes": value_bytes,
                    "key_bytes": key_bytes,
                    "keys": count,
                    "bytes_per_key": round(per_key, 1),
                }
            )
        )


if __name__ == "__main__":
    main()
