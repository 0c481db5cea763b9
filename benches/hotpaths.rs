//! Criterion micro-benchmarks of fsctl's hot paths: latest-row selection over a Parquet file,
//! vector encoding and decoding. `make bench-micro`.

use std::hint::black_box;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float32Array, Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fsctl::offline::{Partition, ViewScan, Window};
use fsctl::repo::Repo;
use fsctl::vector::{SchemaFingerprint, Value, VectorEncoder, decode};
use parquet::arrow::ArrowWriter;

const ROWS: i64 = 200_000;
const ENTITIES: i64 = 50_000;

fn repo_with_data() -> (tempfile::TempDir, Repo) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("feature_store.yaml"),
        "project: bench\nonline_store: {type: redis, url: redis://127.0.0.1:1/0}\n\
         entities: [{name: customer, join_keys: [{name: customer_id, dtype: int64}]}]\n\
         sources: [{name: s, path: data.parquet, timestamp_field: ts}]\n\
         feature_views:\n  - name: v\n    entities: [customer]\n    source: s\n    ttl: 30d\n    features:\n\
         \x20     - {name: a, dtype: float64, default: 0.0}\n      - {name: b, dtype: float32}\n      - {name: c, dtype: int64}\n\
         feature_services: [{name: svc, features: [v], online_ttl: 36500d}]\n",
    )
    .unwrap();
    let batch = RecordBatch::try_from_iter(vec![
        (
            "customer_id",
            Arc::new(Int64Array::from_iter_values(
                (0..ROWS).map(|i| 1_000_000 + i % ENTITIES),
            )) as ArrayRef,
        ),
        (
            "ts",
            Arc::new(TimestampMicrosecondArray::from_iter_values(
                (0..ROWS).map(|i| 1_763_000_000_000_000 + i * 1_000_000),
            )),
        ),
        (
            "a",
            Arc::new(Float64Array::from_iter_values(
                (0..ROWS).map(|i| i as f64 * 0.5),
            )),
        ),
        (
            "b",
            Arc::new(Float32Array::from_iter_values((0..ROWS).map(|i| i as f32))),
        ),
        ("c", Arc::new(Int64Array::from_iter_values(0..ROWS))),
    ])
    .unwrap();
    let mut w = ArrowWriter::try_new(
        std::fs::File::create(dir.path().join("data.parquet")).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let repo = Repo::load(dir.path()).unwrap();
    (dir, repo)
}

fn latest_row(c: &mut Criterion) {
    let (_dir, repo) = repo_with_data();
    let window = Window {
        start_us: 0,
        end_us: i64::MAX,
    };
    let mut group = c.benchmark_group("latest_row");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.sample_size(20);
    group.bench_function("200k rows, 50k entities", |b| {
        b.iter(|| {
            let scan = ViewScan::plan(&repo, 0, vec![0, 1, 2], window).unwrap();
            let rows = scan.run(Partition::ALL, None, 0, &|_| {}).unwrap();
            assert_eq!(rows.len() as i64, ENTITIES);
            black_box(rows)
        })
    });
    group.finish();
}

fn codec(c: &mut Criterion) {
    let values: Vec<Value> = (0..16)
        .map(|i| match i % 4 {
            0 => Value::Int(i * 1000),
            1 => Value::F64(i as f64 * 0.37),
            2 => Value::F32(i as f32 * 0.5),
            _ => Value::Str(format!("segment-{i}")),
        })
        .collect();
    let items: Vec<Vec<u8>> = values
        .iter()
        .map(|v| {
            let mut b = Vec::new();
            fsctl::vector::msgpack::write_value(&mut b, v);
            b
        })
        .collect();
    let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
    let ts = [
        Some(1_763_856_000_000_000),
        None,
        Some(1_763_852_400_000_000),
    ];
    let encoder = VectorEncoder::new(SchemaFingerprint(0xb9d0_f02c_6263_a15e), values.len(), 2048);
    let mut out = Vec::new();
    let bytes = encoder.encode_to(&ts, &refs, &mut out).to_vec();
    let mut group = c.benchmark_group("vector");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode 16 values", |b| {
        b.iter(|| {
            black_box(
                encoder
                    .encode_to(black_box(&ts), black_box(&refs), &mut out)
                    .len(),
            )
        })
    });
    group.bench_function("decode 16 values", |b| {
        b.iter(|| black_box(decode(black_box(&bytes)).unwrap()))
    });
    // The reference the decoder replaced (src/vector/unpack.rs): the same document through
    // rmp_serde and `Value`'s serde visitor.
    group.bench_function("decode 16 values, rmp_serde", |b| {
        b.iter(|| {
            let doc: (u64, Vec<Option<i64>>, Vec<fsctl::vector::Value>) =
                rmp_serde::from_slice(black_box(&bytes[1..])).unwrap();
            black_box(doc)
        })
    });
    group.finish();
}

criterion_group!(benches, latest_row, codec);
criterion_main!(benches);
