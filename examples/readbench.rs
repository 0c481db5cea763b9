//! Read-side benchmark (`make bench-read`): p50/p99 latency of the library's `FeatureClient`
//! (decode, fingerprint check, named values, view ages) against raw MGET of the same keys on
//! the same server, and of the client's LRU when the entities are hot.
//!
//!   cargo run --release --example readbench -- REPO SERVICE [ITERATIONS]
//!
//! Prints one JSON object per batch size.

use std::path::Path;
use std::time::{Duration, Instant};

use fsctl::client::{Entity, FeatureClient, ReadOptions};
use fsctl::repo::Repo;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn timed(samples: &mut Vec<f64>, f: impl FnOnce()) {
    let t = Instant::now();
    f();
    samples.push(t.elapsed().as_secs_f64() * 1e6);
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let repo = Repo::load(Path::new(args.first().ok_or("REPO")?))?;
    let service = args.get(1).ok_or("SERVICE")?.as_str();
    let iterations: usize = args.get(2).map_or(Ok(3000), |s| s.parse())?;
    let client = FeatureClient::from_repo(&repo)?;
    let cached = FeatureClient::builder_for(&repo)
        .cache(100_000, Duration::from_secs(600))
        .build()?;
    let snapshot = client.snapshot(service)?;
    // The reference: plain MGET on a connection of its own to the same server.
    let url = std::env::var("FSCTL_REDIS_URL").unwrap_or_else(|_| repo.online.url.clone());
    let mut raw = redis::Client::open(url)?.get_connection()?;
    // Entities to read: customers of the dataset (datagen numbers them from 1000000).
    let ids: Vec<i64> = (0..10_000)
        .map(|i| 1_000_000 + (i * 7919) % 100_000)
        .collect();
    let entities: Vec<Entity> = ids.iter().map(|&id| Entity::from(id)).collect();
    let options = ReadOptions::default();
    for batch in [1usize, 10, 100] {
        let (mut lib, mut mget, mut hit, mut decoded) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for i in 0..iterations {
            let start = (i * batch) % (entities.len() - batch);
            let some = &entities[start..start + batch];
            let keys: Vec<String> = some
                .iter()
                .map(|e| snapshot.key(e))
                .collect::<Result<_, _>>()?;
            // Three measurements per iteration, their order rotated so that none always
            // follows another (a round trip right after one is faster).
            for turn in 0..3 {
                match (i + turn) % 3 {
                    0 => timed(&mut lib, || {
                        let got = client.get_many(service, some, &options).expect("read");
                        assert!(got.iter().all(|v| v.found), "benchmark keys must exist");
                    }),
                    1 => timed(&mut mget, || {
                        let v: Vec<Option<Vec<u8>>> =
                            redis::cmd("MGET").arg(&keys).query(&mut raw).expect("mget");
                        assert_eq!(v.len(), batch);
                    }),
                    // The second reference: MGET and the decode any reader needs.
                    _ => timed(&mut decoded, || {
                        let v: Vec<Option<Vec<u8>>> =
                            redis::cmd("MGET").arg(&keys).query(&mut raw).expect("mget");
                        let vectors: Vec<_> = v
                            .iter()
                            .map(|b| fsctl::vector::decode(b.as_deref().expect("present")))
                            .collect();
                        assert!(vectors.iter().all(Result::is_ok));
                    }),
                }
            }
        }
        // The LRU: the first pass fills it, the second is all hits.
        let hot = &entities[..batch];
        cached.get_many(service, hot, &options)?;
        for _ in 0..iterations {
            timed(&mut hit, || {
                let got = cached.get_many(service, hot, &options).expect("read");
                assert_eq!(got.len(), batch);
            });
        }
        let stats = cached.cache_stats();
        assert!(stats.hits >= (iterations * batch) as u64, "{stats:?}");
        for s in [&mut lib, &mut mget, &mut hit, &mut decoded] {
            s.sort_by(f64::total_cmp);
        }
        let p = |s: &[f64], q| percentile(s, q);
        println!(
            "{{\"batch\": {batch}, \"client_p50_us\": {:.1}, \"client_p99_us\": {:.1}, \"mget_p50_us\": {:.1}, \"mget_p99_us\": {:.1}, \"lru_p50_us\": {:.2}, \"lru_p99_us\": {:.2}, \"p99_ratio\": {:.3}, \"lru_p99_over_mget_p50\": {:.3}, \"mget_decode_p99_us\": {:.1}, \"p99_ratio_to_mget_decode\": {:.3}}}",
            p(&lib, 0.5),
            p(&lib, 0.99),
            p(&mget, 0.5),
            p(&mget, 0.99),
            p(&hit, 0.5),
            p(&hit, 0.99),
            p(&lib, 0.99) / p(&mget, 0.99),
            p(&hit, 0.99) / p(&mget, 0.5),
            p(&decoded, 0.99),
            p(&lib, 0.99) / p(&decoded, 0.99)
        );
    }
    Ok(())
}
