//! Deterministic data for fsctl: the golden test fixtures, the example repo's demo data and the
//! benchmark dataset. Same arguments, same bytes.
//!
//!   cargo run --release --bin fsctl-datagen -- fixtures fixtures/
//!   cargo run --release --bin fsctl-datagen -- banking feature_repo/ --entities 10000 [--anchor-hour H]
//!       [--rows-per-entity 3] [--embedding-dim 16]
//!
//! The banking data is placed relative to an anchor hour (default: the current hour, so demo
//! keys never start out expired); pass `--anchor-hour` (hours since the epoch) to pin it.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, DictionaryArray, Float32Array, Float64Array, Int32Array, Int64Array,
    ListArray, RecordBatch, StringArray, TimestampMicrosecondArray, TimestampMillisecondArray,
};
use arrow::datatypes::{Float32Type, Int32Type};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

type Res = Result<(), Box<dyn std::error::Error>>;

fn main() -> Res {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| -> Option<String> {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    match args.first().map(String::as_str) {
        Some("fixtures") => fixtures(Path::new(args.get(1).ok_or("fixtures DIR")?)),
        Some("banking") => {
            let dir = Path::new(args.get(1).ok_or("banking DIR")?);
            let now_hour = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64 / 3600;
            let cfg = Banking {
                entities: flag("--entities").map_or(Ok(10_000), |v| v.parse())?,
                rows_per_entity: flag("--rows-per-entity").map_or(Ok(3), |v| v.parse())?,
                embedding_dim: flag("--embedding-dim").map_or(Ok(16), |v| v.parse())?,
                anchor_us: flag("--anchor-hour").map_or(Ok(now_hour), |v| v.parse())? * 3_600_000_000,
            };
            banking(dir, &cfg)
        }
        _ => Err("usage: fsctl-datagen fixtures DIR | fsctl-datagen banking DIR [--entities N] [--rows-per-entity R] [--embedding-dim D] [--anchor-hour H]".into()),
    }
}

fn write(path: &Path, columns: Vec<(&str, ArrayRef)>, row_group_rows: usize) -> Res {
    std::fs::create_dir_all(path.parent().unwrap())?;
    let batch = RecordBatch::try_from_iter(columns)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(row_group_rows))
        .set_created_by("fsctl datagen".into())
        .build();
    let mut w = ArrowWriter::try_new(File::create(path)?, batch.schema(), Some(props))?;
    w.write(&batch)?;
    w.close()?;
    Ok(())
}

/// splitmix64: tiny, fast, and the same everywhere.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const HOUR_US: i64 = 3_600_000_000;
const DAY_US: i64 = 24 * HOUR_US;

struct Banking {
    entities: i64,
    rows_per_entity: i64,
    embedding_dim: usize,
    anchor_us: i64,
}

fn banking(dir: &Path, cfg: &Banking) -> Res {
    let data = dir.join("data");
    let n = cfg.entities;
    let ids = |i: i64| 1_000_000 + i;
    let group = 256 * 1024;

    // customer_profile: one row per customer, a tenth updated once more (ties by created time).
    {
        let mut rng = Rng(1);
        let (
            mut id,
            mut ts,
            mut created,
            mut age,
            mut seg,
            mut limit,
            mut tenure,
            mut prem,
            mut signup,
        ) = (
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
        );
        for i in 0..n {
            let versions = if i % 10 == 0 { 2 } else { 1 };
            for v in 0..versions {
                id.push(ids(i));
                let t = cfg.anchor_us - (rng.below(60 * 24) as i64 + 1) * HOUR_US + v * HOUR_US / 2;
                ts.push(t);
                created.push(t + 1_000_000);
                age.push((18 + rng.below(70)) as i32);
                seg.push(
                    ["mass", "affluent", "private", "student", "business"][rng.below(5) as usize],
                );
                limit.push(if rng.below(100) == 0 {
                    None
                } else {
                    Some((rng.below(500) * 100) as f64)
                });
                tenure.push(rng.below(5000) as i64);
                prem.push(rng.below(4) == 0);
                signup.push(Some(cfg.anchor_us - rng.below(3650) as i64 * DAY_US));
            }
        }
        let seg: DictionaryArray<Int32Type> = seg.into_iter().collect();
        write(
            &data.join("customer_profile.parquet"),
            vec![
                ("customer_id", Arc::new(Int64Array::from(id)) as ArrayRef),
                (
                    "event_timestamp",
                    Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("UTC")),
                ),
                (
                    "created_timestamp",
                    Arc::new(TimestampMicrosecondArray::from(created).with_timezone("UTC")),
                ),
                ("age", Arc::new(Int32Array::from(age))),
                ("segment", Arc::new(seg)),
                ("credit_limit", Arc::new(Float64Array::from(limit))),
                ("tenure_days", Arc::new(Int64Array::from(tenure))),
                ("is_premium", Arc::new(BooleanArray::from(prem))),
                (
                    "signup_ts",
                    Arc::new(TimestampMicrosecondArray::from(signup)),
                ),
            ],
            group,
        )?;
    }

    // transactions_agg: rows_per_entity hourly aggregates per customer over the last day, in
    // time order (so row-group statistics prune), split over two files of a directory.
    {
        let mut rng = Rng(2);
        let r = cfg.rows_per_entity;
        let per_file = (r + 1) / 2;
        for part in 0..2 {
            let (mut id, mut ts, mut cnt, mut sum, mut avg, mut max, mut merch) =
                (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
            for k in (part * per_file)..((part + 1) * per_file).min(r) {
                let t0 = cfg.anchor_us - DAY_US + (k + 1) * (DAY_US / (r + 1));
                for i in 0..n {
                    id.push(ids(i));
                    ts.push(t0 + (i % 3600) * 1_000_000);
                    cnt.push(if rng.below(100) == 0 {
                        None
                    } else {
                        Some(rng.below(20) as i64)
                    });
                    sum.push(Some((rng.unit() * 50_000.0).round() / 100.0));
                    avg.push(if rng.below(200) == 0 {
                        Some(f32::NAN)
                    } else {
                        Some((rng.unit() * 200.0) as f32)
                    });
                    max.push(if rng.below(50) == 0 {
                        None
                    } else {
                        Some(rng.unit() * 2000.0)
                    });
                    merch.push(rng.below(30) as i32);
                }
            }
            if id.is_empty() {
                continue;
            }
            write(
                &data.join(format!("transactions/part-{part}.parquet")),
                vec![
                    ("customer_id", Arc::new(Int64Array::from(id)) as ArrayRef),
                    (
                        "event_timestamp",
                        Arc::new(TimestampMicrosecondArray::from(ts)),
                    ),
                    ("txn_cnt_1h", Arc::new(Int64Array::from(cnt))),
                    ("tx_sum_1h", Arc::new(Float64Array::from(sum))),
                    ("tx_avg_24h", Arc::new(Float32Array::from(avg))),
                    ("tx_max_24h", Arc::new(Float64Array::from(max))),
                    ("merchant_count_24h", Arc::new(Int32Array::from(merch))),
                ],
                group,
            )?;
        }
    }

    // risk_signals: two snapshots per customer in two files matched by a glob; 2% of customers
    // have no risk row at all (they get the view's defaults).
    for (file, day) in [(0, 3), (1, 1)] {
        let mut rng = Rng(3 + file);
        let (mut id, mut ts, mut dev, mut ip, mut fraud, mut vel, mut cb) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        for i in 0..n {
            if i % 50 == 7 {
                continue;
            }
            id.push(ids(i));
            ts.push(cfg.anchor_us - day * DAY_US + (i % 86_400) * 1_000_000);
            dev.push(rng.unit() as f32);
            ip.push(if rng.below(100) == 0 {
                None
            } else {
                Some(rng.unit() as f32)
            });
            fraud.push(if rng.below(100) == 0 {
                None
            } else {
                Some(rng.unit().powi(3))
            });
            vel.push(rng.unit() * 10.0);
            cb.push(rng.below(3) as i32);
        }
        write(
            &data.join(format!("risk_signals_{file}.parquet")),
            vec![
                ("customer_id", Arc::new(Int64Array::from(id)) as ArrayRef),
                (
                    "event_timestamp",
                    Arc::new(
                        TimestampMillisecondArray::from(
                            ts.iter().map(|t| t / 1000).collect::<Vec<_>>(),
                        )
                        .with_timezone("Europe/Paris"),
                    ),
                ),
                ("device_risk", Arc::new(Float32Array::from(dev))),
                ("ip_risk", Arc::new(Float32Array::from(ip))),
                ("fraud_score", Arc::new(Float64Array::from(fraud))),
                ("velocity_score", Arc::new(Float64Array::from(vel))),
                ("chargebacks_90d", Arc::new(Int32Array::from(cb))),
            ],
            group,
        )?;
    }

    // customer_embedding: one embedding per customer.
    {
        let mut rng = Rng(9);
        let dim = cfg.embedding_dim;
        let mut ts = Vec::with_capacity(n as usize);
        let values: Vec<Option<Vec<Option<f32>>>> = (0..n)
            .map(|i| {
                ts.push(cfg.anchor_us - (i % 20 + 1) * DAY_US);
                Some(
                    (0..dim)
                        .map(|_| Some((rng.unit() * 2.0 - 1.0) as f32))
                        .collect(),
                )
            })
            .collect();
        let list = ListArray::from_iter_primitive::<Float32Type, _, _>(values);
        write(
            &data.join("customer_embedding.parquet"),
            vec![
                (
                    "customer_id",
                    Arc::new(Int64Array::from((0..n).map(ids).collect::<Vec<_>>())) as ArrayRef,
                ),
                (
                    "event_timestamp",
                    Arc::new(TimestampMicrosecondArray::from(ts)),
                ),
                ("embedding", Arc::new(list)),
            ],
            64 * 1024,
        )?;
    }

    // entity_popularity: requests over 7 days, power-law (Zipf-like) over customers.
    {
        let mut rng = Rng(11);
        let ids_v: Vec<i64> = (0..n).map(ids).collect();
        let scores: Vec<i64> = (0..n)
            .map(|i| {
                (1_000_000.0 / (1.0 + ((i * 7919) % n) as f64)).round() as i64 + rng.below(3) as i64
            })
            .collect();
        write(
            &data.join("entity_popularity.parquet"),
            vec![
                ("customer_id", Arc::new(Int64Array::from(ids_v)) as ArrayRef),
                ("requests_7d", Arc::new(Int64Array::from(scores))),
            ],
            group,
        )?;
    }
    eprintln!("datagen: wrote {n} customers to {}", data.display());
    Ok(())
}

/// 2025-11-23T00:00:00Z, the golden fixtures' window end.
const END_US: i64 = 1_763_856_000_000_000;

fn ts_ms(us: &[Option<i64>]) -> ArrayRef {
    Arc::new(
        TimestampMillisecondArray::from(us.iter().map(|t| t.map(|t| t / 1000)).collect::<Vec<_>>())
            .with_timezone("America/New_York"),
    )
}

fn ts_us(us: &[Option<i64>]) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(us.to_vec()))
}

/// Golden fixtures: small files whose correct vectors are known by construction (see the
/// golden tests for the expected values and the reason for every row).
fn fixtures(dir: &Path) -> Res {
    let golden = dir.join("golden");
    let h = |hours: f64| Some(END_US - DAY_US + (hours * HOUR_US as f64) as i64);
    // profile: two files of one directory. Columns cover widening (int32 key and age,
    // float32 score), checked narrowing (risk float64 -> float32), dictionary strings,
    // field_mapping (cnt_src -> txn_count), NaN and nulls.
    struct P {
        id: Option<i32>,
        ts: Option<i64>,
        created: Option<i64>,
        age: Option<i32>,
        score: Option<f32>,
        risk: Option<f64>,
        seg: Option<&'static str>,
        cnt: Option<i64>,
        avg: Option<f64>,
        note: Option<&'static str>,
    }
    let row = |id, ts, created, age| P {
        id,
        ts,
        created,
        age,
        score: Some(0.5),
        risk: Some(0.25),
        seg: Some("gold"),
        cnt: Some(3),
        avg: Some(1.5),
        note: Some("ok"),
    };
    let file0 = vec![
        row(Some(1), h(10.0), h(10.0), Some(30)),
        row(Some(1), h(12.0), h(12.0), Some(31)), // customer 1: latest event wins
        row(Some(2), h(12.0), h(12.0 + 5.0 / 60.0), Some(40)), // customer 2: later created wins
        row(Some(3), h(9.0), h(9.0), Some(50)),
        row(Some(4), h(0.0), h(0.0), Some(60)), // exactly the window start: kept
        row(Some(4), Some(END_US - DAY_US - 1000), h(0.0), Some(61)), // 1 ms too old: skipped
        row(Some(5), Some(END_US), Some(END_US), Some(70)), // exactly the window end: kept
        row(Some(5), Some(END_US + 1000), Some(END_US), Some(71)), // 1 ms in the future: skipped
        row(Some(6), Some(END_US + HOUR_US), h(1.0), Some(80)), // customer 6: only a future row
        row(None, h(3.0), h(3.0), Some(99)),    // null key: skipped, counted
        P {
            id: Some(7),
            ts: h(5.0),
            created: None,
            age: None,
            score: None,
            risk: None,
            seg: None,
            cnt: None,
            avg: Some(f64::NAN),
            note: None,
        },
    ];
    let file1 = vec![
        row(Some(2), h(12.0), h(12.0 + 1.0 / 60.0), Some(41)), // customer 2: earlier created loses
        row(Some(3), h(9.0), h(9.0), Some(51)), // customer 3: full tie, later in scan order wins
        row(None, h(4.0), h(4.0), Some(98)),    // null key: skipped, counted
        P {
            id: Some(9),
            ts: h(6.0),
            created: h(6.0),
            age: Some(90),
            score: Some(-2.5),
            risk: Some(1e30),
            seg: Some("x:y"),
            cnt: Some(-1),
            avg: Some(2.0),
            note: Some(""),
        },
    ];
    for (i, rows) in [file0, file1].iter().enumerate() {
        let seg: DictionaryArray<Int32Type> = rows.iter().map(|r| r.seg).collect();
        write(
            &golden.join(format!("data/profile/part-{i}.parquet")),
            vec![
                (
                    "customer_id",
                    Arc::new(Int32Array::from(
                        rows.iter().map(|r| r.id).collect::<Vec<_>>(),
                    )) as ArrayRef,
                ),
                (
                    "event_ts",
                    ts_ms(&rows.iter().map(|r| r.ts).collect::<Vec<_>>()),
                ),
                (
                    "created_ts",
                    ts_us(&rows.iter().map(|r| r.created).collect::<Vec<_>>()),
                ),
                (
                    "age",
                    Arc::new(Int32Array::from(
                        rows.iter().map(|r| r.age).collect::<Vec<_>>(),
                    )),
                ),
                (
                    "score",
                    Arc::new(Float32Array::from(
                        rows.iter().map(|r| r.score).collect::<Vec<_>>(),
                    )),
                ),
                (
                    "risk",
                    Arc::new(Float64Array::from(
                        rows.iter().map(|r| r.risk).collect::<Vec<_>>(),
                    )),
                ),
                ("segment", Arc::new(seg)),
                (
                    "cnt_src",
                    Arc::new(Int64Array::from(
                        rows.iter().map(|r| r.cnt).collect::<Vec<_>>(),
                    )),
                ),
                (
                    "avg",
                    Arc::new(Float64Array::from(
                        rows.iter().map(|r| r.avg).collect::<Vec<_>>(),
                    )),
                ),
                (
                    "note",
                    Arc::new(StringArray::from(
                        rows.iter().map(|r| r.note).collect::<Vec<_>>(),
                    )),
                ),
            ],
            3, // several row groups per file, so pruning and parallel scan are exercised
        )?;
    }
    // txn: one file, naive microsecond timestamps, an embedding column.
    let emb = ListArray::from_iter_primitive::<Float32Type, _, _>(vec![
        Some(vec![Some(0.5), Some(-1.0)]),
        Some(vec![Some(0.25), None]),
        None,
        Some(vec![]),
    ]);
    write(
        &golden.join("data/txn.parquet"),
        vec![
            (
                "customer_id",
                Arc::new(Int64Array::from(vec![1, 2, 6, 8])) as ArrayRef,
            ),
            ("ts", ts_us(&[h(20.0), h(21.0), h(22.0), h(23.0)])),
            (
                "tx_sum",
                Arc::new(Float64Array::from(vec![
                    Some(10.5),
                    None,
                    Some(7.0),
                    Some(f64::NAN),
                ])),
            ),
            ("emb", Arc::new(emb)),
        ],
        1024,
    )?;
    // accounts: composite key (bank string, account_no int64), strings holding ':' and '\'.
    write(
        &golden.join("data/accounts.parquet"),
        vec![
            (
                "bank",
                Arc::new(StringArray::from(vec!["acme", "a:b", r"c\d", "acme"])) as ArrayRef,
            ),
            ("account_no", Arc::new(Int64Array::from(vec![1, 2, 3, 1]))),
            ("ts", ts_us(&[h(1.0), h(2.0), h(3.0), h(4.0)])),
            (
                "balance",
                Arc::new(Float64Array::from(vec![100.0, 200.0, 300.0, 150.0])),
            ),
        ],
        1024,
    )?;
    eprintln!("datagen: wrote golden fixtures to {}", golden.display());
    contract(&dir.join("contract"))
}

/// The contract fixture: every dtype, nulls, NaN, defaults, a vector large enough to be
/// compressed and composite keys holding `:` and `\`. fixtures/contract/expected.json states
/// what both clients (the library's and python/) must read; each row here says why it is there.
fn contract(dir: &Path) -> Res {
    use arrow::array::{BinaryArray, ListBuilder, StringBuilder};
    use arrow::datatypes::{Float64Type, Int64Type};
    let at = |minutes_before_end: i64| Some(END_US - minutes_before_end * 60_000_000);
    let utc = |us: Vec<Option<i64>>| -> ArrayRef {
        Arc::new(TimestampMicrosecondArray::from(us).with_timezone("UTC"))
    };
    // Rows: every value present and at the edges of its type; every value null (or NaN, or an
    // empty list); extremes and a timestamp before 1970; a string key with `:` and `\`.
    let shops = ["north", "a:b", r"c\d", r"e:\f"];
    let mut tags = ListBuilder::new(StringBuilder::new());
    for row in [
        Some(vec!["a", "", "b:c"]),
        None,
        Some(vec![""]),
        Some(vec!["x"]),
    ] {
        match row {
            Some(items) => {
                for t in items {
                    tags.values().append_value(t);
                }
                tags.append(true);
            }
            None => tags.append(false),
        }
    }
    write(
        &dir.join("data/typed.parquet"),
        vec![
            (
                "shop",
                Arc::new(StringArray::from(shops.to_vec())) as ArrayRef,
            ),
            ("item_id", Arc::new(Int64Array::from(vec![1, 2, 3, -4]))),
            ("ts", utc(vec![at(240), at(180), at(120), at(1200)])),
            (
                "i32",
                Arc::new(Int32Array::from(vec![
                    Some(-5),
                    None,
                    Some(i32::MAX),
                    Some(0),
                ])),
            ),
            (
                "i64",
                Arc::new(Int64Array::from(vec![
                    Some(9_007_199_254_740_993), // 2^53 + 1: not a float64
                    None,
                    Some(i64::MIN),
                    Some(0),
                ])),
            ),
            (
                "f32",
                Arc::new(Float32Array::from(vec![
                    Some(0.1),
                    Some(f32::NAN), // NaN takes the declared default
                    Some(f32::MAX),
                    Some(-0.0),
                ])),
            ),
            (
                "f64",
                Arc::new(Float64Array::from(vec![
                    Some(-2.5e-8),
                    None,
                    Some(1e300),
                    Some(1.0),
                ])),
            ),
            (
                "flag",
                Arc::new(BooleanArray::from(vec![
                    Some(true),
                    None,
                    Some(false),
                    Some(true),
                ])),
            ),
            (
                "label",
                Arc::new(StringArray::from(vec![
                    Some("h\u{e9}llo \u{2713}"),
                    None,
                    Some("c"),
                    Some("e"),
                ])),
            ),
            (
                "blob",
                Arc::new(BinaryArray::from(vec![
                    Some(&[0x00, 0xff, 0x10, 0x80][..]),
                    None,
                    Some(&[][..]),
                    Some(&b"\\:"[..]),
                ])),
            ),
            (
                "seen",
                utc(vec![Some(1_700_000_000_123_456), None, Some(-1), Some(0)]),
            ),
            (
                "ids",
                Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(vec![
                    Some(vec![Some(1), Some(-2), Some(3)]),
                    Some(vec![]), // an empty list is a list, not a null
                    Some(vec![Some(0)]),
                    Some(vec![Some(-1), None]),
                ])),
            ),
            (
                "weights",
                Arc::new(ListArray::from_iter_primitive::<Float64Type, _, _>(vec![
                    Some(vec![Some(0.5), Some(f64::NAN)]), // NaN inside a list stays NaN
                    None,
                    Some(vec![]),
                    Some(vec![Some(1.0)]),
                ])),
            ),
            (
                "emb",
                Arc::new(ListArray::from_iter_primitive::<Float32Type, _, _>(vec![
                    Some(vec![Some(0.25), None, Some(-1.0)]), // a null element stays nil
                    None,
                    Some(vec![]),
                    Some(vec![Some(1.5)]),
                ])),
            ),
            ("tags", Arc::new(tags.finish())),
        ],
        1024,
    )?;
    // notes: a 2 h window. Item c\d's long text makes its vector larger than the compression
    // threshold; north:5 has notes only; e:\f's note is older than the window.
    let long = "fsctl contract ".repeat(200);
    write(
        &dir.join("data/notes.parquet"),
        vec![
            (
                "shop",
                Arc::new(StringArray::from(vec!["north", r"c\d", "north", r"e:\f"])) as ArrayRef,
            ),
            ("item_id", Arc::new(Int64Array::from(vec![1, 3, 5, -4]))),
            ("ts", utc(vec![at(90), at(60), at(30), at(180)])),
            (
                "text",
                Arc::new(StringArray::from(vec![
                    "first",
                    long.as_str(),
                    "short",
                    "too old",
                ])),
            ),
        ],
        1024,
    )?;
    eprintln!("datagen: wrote the contract fixture to {}", dir.display());
    Ok(())
}
