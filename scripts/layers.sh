#!/usr/bin/env bash
# The library's module graph, from its `crate::` paths: prints every edge, and fails when a
# module imports one of its own layer or above (a cycle or an upward import). `make lint` runs it.
#
# Layers, bottom up; a module may use only the layers below its own:
#   0 base   1 vector progress   2 repo   3 offline   4 assemble online   5 client   6 engine
set -euo pipefail
cd "$(dirname "$0")/../src"

rank() {
    case "$1" in
        base) echo 0 ;;
        vector | progress) echo 1 ;;
        repo) echo 2 ;;
        offline) echo 3 ;;
        assemble | online) echo 4 ;;
        client) echo 5 ;;
        engine) echo 6 ;;
        *) echo "unknown module $1" >&2; exit 2 ;;
    esac
}

bad=0
for module in base progress vector repo offline assemble online client engine; do
    files=$(ls -d "$module" "$module.rs" 2>/dev/null || true)
    uses=$(grep -rhoE 'crate::[a-z_]+' $files | sed 's/crate:://' | sort -u || true)
    for used in $uses; do
        [ "$used" = "$module" ] && continue
        if [ "$(rank "$used")" -lt "$(rank "$module")" ]; then
            echo "$module -> $used"
        else
            echo "$module -> $used   <- not allowed: layer $(rank "$used") is not below layer $(rank "$module")"
            bad=1
        fi
    done
done
if [ "$bad" = 1 ]; then
    echo "layers.sh: the module graph has an upward import or a cycle" >&2
    exit 1
fi
echo "layers.sh: no cycle, no upward import"
