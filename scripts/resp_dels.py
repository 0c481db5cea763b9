"""Writes 500-key DEL commands (RESP) to stdout for the keys of a snapshot, for bench-lifecycle.

With no argument, the keys are stdin's lines (as `redis-cli --raw keys` prints them), in that
order; with `--numeric`, the same sorted by their integer entity (after the last `:`). With
`--written PREFIX`, stdin is a RESP stream (`fsctl materialize --emit-resp`) and the keys are
its SETs' keys that start with PREFIX, in the stream's order.
"""

import sys

BATCH = 500


def set_keys(stream: bytes, prefix: bytes):
    at = 0
    while at < len(stream):
        end = stream.index(b"\r\n", at)
        argc = int(stream[at + 1 : end])
        at = end + 2
        args = []
        for _ in range(argc):
            end = stream.index(b"\r\n", at)
            size = int(stream[at + 1 : end])
            args.append(stream[end + 2 : end + 2 + size])
            at = end + 2 + size + 2
        if args[0] == b"SET" and args[1].startswith(prefix):
            yield args[1]


def main() -> None:
    data = sys.stdin.buffer.read()
    if len(sys.argv) == 3 and sys.argv[1] == "--written":
        keys = list(set_keys(data, sys.argv[2].encode()))
    else:
        keys = data.split(b"\n")[:-1]
        if sys.argv[1:] == ["--numeric"]:
            keys.sort(key=lambda k: int(k.rsplit(b":", 1)[1]))
    out = sys.stdout.buffer
    for i in range(0, len(keys), BATCH):
        chunk = keys[i : i + BATCH]
        out.write(b"*%d\r\n$3\r\nDEL\r\n" % (len(chunk) + 1))
        for k in chunk:
            out.write(b"$%d\r\n%s\r\n" % (len(k), k))


if __name__ == "__main__":
    main()
