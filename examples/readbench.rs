//! Read-side benchmark for `make bench`: p50/p99 latency of the library reader (pointer resolved
//! once, MGET, decode, fingerprint check) against raw MGET of the same keys on the same server.
//!
//!   cargo run --release --example readbench -- REPO SERVICE [ITERATIONS]
//!
//! Prints one JSON object per batch size.

use std::path::Path;
use std::time::Instant;

use fsctl::online::{KeySpace, Reader, RedisStore};
use fsctl::repo::Repo;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let repo = Repo::load(Path::new(args.first().ok_or("REPO")?))?;
    let service = repo
        .service(args.get(1).ok_or("SERVICE")?)
        .ok_or("unknown service")?;
    let iterations: usize = args.get(2).map_or(Ok(3000), |s| s.parse())?;
    let store = RedisStore::open(&repo.online)?;
    let keys = KeySpace::new(&repo.online.key_prefix, &repo.project, &service.name);
    let reader = Reader::new(&store, keys, repo.retire_grace());
    let pinned = reader.pin(None)?;
    // The reference: plain MGET on a connection of its own to the same server.
    let url = std::env::var("FSCTL_REDIS_URL").unwrap_or_else(|_| repo.online.url.clone());
    let mut raw = redis::Client::open(url)?.get_connection()?;
    // Entities to read: the first customers of the dataset (datagen numbers them from 1000000).
    let entities: Vec<String> = (0..10_000)
        .map(|i| (1_000_000 + (i * 7919) % 100_000).to_string())
        .collect();
    for batch in [1usize, 10, 100] {
        let (mut lib, mut mget) = (
            Vec::with_capacity(iterations),
            Vec::with_capacity(iterations),
        );
        for i in 0..iterations {
            let start = (i * batch) % (entities.len() - batch);
            let some: Vec<&str> = entities[start..start + batch]
                .iter()
                .map(String::as_str)
                .collect();
            let keys: Vec<String> = some.iter().map(|e| pinned.key(e)).collect();
            // Alternate which goes first so neither always gets a warm cache.
            let run_lib = |lib: &mut Vec<f64>| {
                let t = Instant::now();
                let got = reader.get_many(&pinned, &some).expect("read");
                lib.push(t.elapsed().as_secs_f64() * 1e6);
                assert!(got.iter().all(Option::is_some), "benchmark keys must exist");
            };
            let mut run_raw = |mget: &mut Vec<f64>| {
                let t = Instant::now();
                let v: Vec<Option<Vec<u8>>> =
                    redis::cmd("MGET").arg(&keys).query(&mut raw).expect("mget");
                mget.push(t.elapsed().as_secs_f64() * 1e6);
                assert_eq!(v.len(), batch);
            };
            if i % 2 == 0 {
                run_lib(&mut lib);
                run_raw(&mut mget);
            } else {
                run_raw(&mut mget);
                run_lib(&mut lib);
            }
        }
        lib.sort_by(f64::total_cmp);
        mget.sort_by(f64::total_cmp);
        println!(
            "{{\"batch\": {batch}, \"reader_p50_us\": {:.1}, \"reader_p99_us\": {:.1}, \"mget_p50_us\": {:.1}, \"mget_p99_us\": {:.1}, \"p99_ratio\": {:.3}}}",
            percentile(&lib, 0.5),
            percentile(&lib, 0.99),
            percentile(&mget, 0.5),
            percentile(&mget, 0.99),
            percentile(&lib, 0.99) / percentile(&mget, 0.99)
        );
    }
    Ok(())
}
