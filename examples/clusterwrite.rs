//! Cluster write benchmark for `make bench-cluster`: the same `SET key value PXAT` commands
//! (fsctl's key shape, 126-byte values) written to a Redis Cluster by fsctl's cluster writer (a
//! slot map kept by hand, one pipelined writer per primary) and by redis-rs's own sync
//! `cluster_pipe` (which splits a pipeline per node), in turns, into flushed primaries.
//!
//!   FSCTL_REDIS_URL=redis://127.0.0.1:7000,... cargo run --release --example clusterwrite -- REPO [KEYS] [TURNS]
//!
//! REPO names `type: redis_cluster`. Prints one JSON object per turn.

use std::path::Path;
use std::time::Instant;

use fsctl::online::{ClusterStore, OnlineStore, PackedBatch};
use fsctl::repo::Repo;

const BATCH: usize = 1000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let repo = Repo::load(Path::new(args.first().ok_or("REPO")?))?;
    let n: usize = args.get(1).map_or(Ok(300_000), |s| s.parse())?;
    let turns: usize = args.get(2).map_or(Ok(3), |s| s.parse())?;
    let seeds: Vec<String> = std::env::var("FSCTL_REDIS_URL")?
        .split(',')
        .map(str::to_owned)
        .collect();
    let store = ClusterStore::open(&repo.online)?;
    let client = redis::cluster::ClusterClient::new(seeds.clone())?;
    // redis-rs gets the same parallelism as fsctl's writers: `connections` threads, each with
    // its own cluster connection.
    let threads = repo.online.connections.max(1);
    let mut conns = (0..threads)
        .map(|_| client.get_connection())
        .collect::<Result<Vec<_>, _>>()?;
    let prefix = "fs:bench:realtime_scoring:abcdefgh:";
    let value = vec![0x5au8; 126];
    let pxat = fsctl::base::time::now_us() / 1000 + 3_600_000;
    let entities: Vec<String> = (0..n).map(|i| (1_000_000 + i).to_string()).collect();
    let flush = || -> Result<(), Box<dyn std::error::Error>> {
        for seed in &seeds {
            let mut c = redis::Client::open(seed.as_str())?.get_connection()?;
            redis::cmd("FLUSHALL").query::<()>(&mut c)?;
        }
        Ok(())
    };
    for turn in 0..turns {
        flush()?;
        let t = Instant::now();
        let mut sink = store.writer()?;
        for chunk in entities.chunks(BATCH) {
            let mut batch = PackedBatch::default();
            for e in chunk {
                batch.push_set(prefix, e, &value, pxat);
            }
            sink.send(batch)?;
        }
        sink.finish()?;
        let fsctl_s = t.elapsed().as_secs_f64();

        flush()?;
        let t = Instant::now();
        let chunks: Vec<&[String]> = entities.chunks(BATCH).collect();
        std::thread::scope(|s| -> Result<(), String> {
            let handles: Vec<_> = conns
                .iter_mut()
                .enumerate()
                .map(|(i, con)| {
                    let (chunks, value) = (&chunks, &value);
                    s.spawn(move || -> redis::RedisResult<()> {
                        for chunk in chunks.iter().skip(i).step_by(threads) {
                            let mut pipe = redis::cluster::cluster_pipe();
                            for e in chunk.iter() {
                                pipe.cmd("SET")
                                    .arg(format!("{prefix}{e}"))
                                    .arg(value)
                                    .arg("PXAT")
                                    .arg(pxat)
                                    .ignore();
                            }
                            pipe.query::<()>(con)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            for h in handles {
                h.join()
                    .expect("writer thread")
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        })?;
        let cluster_pipe_s = t.elapsed().as_secs_f64();
        println!(
            "{{\"turn\": {turn}, \"keys\": {n}, \"fsctl_s\": {fsctl_s:.3}, \"cluster_pipe_s\": {cluster_pipe_s:.3}}}"
        );
    }
    Ok(())
}
