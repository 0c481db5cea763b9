//! Object-store sources against a real S3-compatible server: `moto_server` (PyPI's moto),
//! started per test on a free loopback port; `make test` installs it (scripts/ensure-moto.sh).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use fsctl::offline::{Partition, ViewScan, Window};
use fsctl::repo::Repo;
use fsctl::vector::decode;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use crate::harness::*;

const SECRET: &str = "s3cr3t-Wq9PzT-never-printed";

/// A moto_server on a free port, killed on drop.
pub struct Moto {
    pub port: u16,
    child: Option<Child>,
    env: Vec<(String, String)>,
}

fn moto_binary() -> PathBuf {
    std::env::var_os("FSCTL_MOTO_SERVER").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin/moto_server"),
        PathBuf::from,
    )
}

impl Moto {
    pub fn start() -> Moto {
        Self::start_with(&[])
    }

    pub fn start_with(env: &[(&str, &str)]) -> Moto {
        let port = crate::harness::free_port();
        let mut moto = Moto {
            port,
            child: None,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        moto.spawn();
        moto
    }

    fn spawn(&mut self) {
        let binary = moto_binary();
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{} must be installed (scripts/ensure-moto.sh installs it): {e}",
                    binary.display()
                )
            });
        self.child = Some(child);
        // moto takes a few seconds to import; it is up when it answers HTTP at all.
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.http("GET", "/", b"").is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("moto_server did not answer on port {}", self.port);
    }

    /// Kills the server (SIGKILL): its objects are gone with it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// One plain HTTP/1.1 request (moto accepts unsigned writes); returns status and body.
    fn http(&self, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            self.port,
            body.len()
        )?;
        s.write_all(body)?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)?;
        let text = String::from_utf8_lossy(&out);
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other("no status line"))?;
        let body = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(Vec::new(), |at| out[at + 4..].to_vec());
        Ok((status, body))
    }

    pub fn create_bucket(&self, bucket: &str) {
        let (status, body) = self.http("PUT", &format!("/{bucket}"), b"").unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }

    /// Writes an object with a signed request, as any S3 client would.
    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        use object_store::ObjectStoreExt;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let store = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .with_bucket_name(bucket)
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .build()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime
            .block_on(store.put(
                &object_store::path::Path::from(key),
                bytes::Bytes::copy_from_slice(bytes).into(),
            ))
            .unwrap_or_else(|e| panic!("put s3://{bucket}/{key}: {e}"));
    }

    /// Uploads every file below `dir` as `{prefix}{relative path}`.
    pub fn upload_dir(&self, bucket: &str, dir: &Path, prefix: &str) {
        for entry in walk(dir) {
            let rel = entry
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            self.put(
                bucket,
                &format!("{prefix}{rel}"),
                &std::fs::read(&entry).unwrap(),
            );
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `offline_store:` block pointing a repo at this server.
    pub fn offline_store(&self) -> String {
        format!(
            "offline_store:\n  storage_options:\n    aws_endpoint: \"{}\"\n    \
             aws_allow_http: true\n    aws_region: us-east-1\n",
            self.endpoint()
        )
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// fsctl with S3 credentials in the environment; the secret (one a test can look for) is also
/// in `SECRET_VAR`, for `storage_options` to use.
fn s3_command(repo: &Path, redis: &RedisServer, args: &[&str]) -> Command {
    let mut cmd = fsctl_command(repo, &redis.url(), args);
    cmd.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("SECRET_VAR", SECRET)
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE");
    cmd
}

/// `s3_command`, run.
fn fsctl_s3(repo: &Path, redis: &RedisServer, args: &[&str]) -> Run {
    let out = s3_command(repo, redis, args).output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Sets the credentials of library calls made by the test itself.
fn library_credentials() {
    // SAFETY: every test of this file sets the same values, before any store is opened.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET);
        std::env::set_var("AWS_REGION", "us-east-1");
    }
}

/// The golden source paths, as `feature_store.yaml` writes them.
const PROFILE: &str = "path: data/profile";
const TXN: &str = "path: \"data/txn*.parquet\"";
const ACCOUNTS: &str = "path: data/accounts.parquet";

/// A scratch golden repo with `offline_store` (a YAML block) and some sources' paths replaced:
/// `(the line as written, its replacement)`.
fn golden_repo_with(offline_store: &str, paths: &[(&str, String)]) -> tempfile::TempDir {
    let repo = scratch_repo("golden");
    edit_yaml(
        repo.path(),
        "materialization:",
        &format!("{offline_store}materialization:"),
    );
    for (from, to) in paths {
        edit_yaml(repo.path(), from, to);
    }
    repo
}

/// The golden repo with its three sources read from `s3://{bucket}/`: a directory prefix,
/// a glob and one object.
fn golden_on_s3(moto: &Moto, bucket: &str) -> tempfile::TempDir {
    moto.create_bucket(bucket);
    moto.upload_dir(bucket, &fixture("golden").join("data"), "lake/data/");
    let repo = golden_repo_with(
        &moto.offline_store(),
        &[
            (PROFILE, format!("path: s3://{bucket}/lake/data/profile/")),
            (
                TXN,
                format!("path: \"s3://{bucket}/lake/data/txn*.parquet\""),
            ),
            (
                ACCOUNTS,
                format!("path: s3://{bucket}/lake/data/accounts.parquet"),
            ),
        ],
    );
    std::fs::remove_dir_all(repo.path().join("data")).unwrap();
    repo
}

/// Every data key of `service` by entity: value bytes and absolute expiry (ms).
fn vectors(redis: &RedisServer, service: &str) -> BTreeMap<String, (Vec<u8>, i64)> {
    let mut con = redis.con();
    let snapshot = current(&mut con, GOLDEN_PREFIX, service).expect("committed");
    let prefix = format!("{GOLDEN_PREFIX}:{service}:{snapshot}:");
    data_keys(&mut con, &prefix)
        .into_iter()
        .map(|(key, bytes)| {
            let at: i64 = redis::cmd("PEXPIRETIME").arg(&key).query(&mut con).unwrap();
            // The expiry is the contract's: as_of + ttl × (1 + jitter × u(key)).
            let manifest = manifest(&mut con, GOLDEN_PREFIX, service);
            let as_of = manifest["as_of_ms"].as_i64().unwrap();
            let ttl = manifest["ttl"]["online_ms"].as_i64().unwrap();
            let jitter = manifest["ttl"]["jitter"].as_f64().unwrap();
            assert_eq!(
                at,
                fsctl::online::expiry_ms(key.as_bytes(), as_of, ttl, jitter),
                "{key}"
            );
            (key[prefix.len()..].to_owned(), (bytes, at - as_of))
        })
        .collect()
}

#[test]
fn golden_from_s3_gives_the_same_vectors_as_from_local_disk() {
    let moto = Moto::start();
    let s3_repo = golden_on_s3(&moto, "golden");
    let local_repo = scratch_repo("golden");
    for service in ["scoring", "balances"] {
        let (s3_redis, local_redis) = (RedisServer::start(), RedisServer::start());
        let args = ["materialize", "--service", service, "--end", GOLDEN_END];
        fsctl_s3(s3_repo.path(), &s3_redis, &args).ok();
        fsctl(local_repo.path(), Some(&local_redis), &args).ok();
        let (from_s3, from_disk) = (vectors(&s3_redis, service), vectors(&local_redis, service));
        assert!(!from_s3.is_empty());
        let bytes = |m: &BTreeMap<String, (Vec<u8>, i64)>| -> BTreeMap<String, Vec<u8>> {
            m.iter().map(|(k, (b, _))| (k.clone(), b.clone())).collect()
        };
        assert_eq!(bytes(&from_s3), bytes(&from_disk), "{service}");
        // The manifest records each object by URL, size and ETag.
        let m = manifest(&mut s3_redis.con(), GOLDEN_PREFIX, service);
        let text = m.to_string();
        assert!(text.contains("s3://golden/lake/data/"), "{text}");
        assert!(text.contains("\"etag\""), "{text}");
        assert!(!text.contains(SECRET));
    }
}

#[test]
fn nested_prefixes_and_globs_list_the_same_files_in_the_same_order() {
    let moto = Moto::start();
    moto.create_bucket("lake");
    let local = scratch_repo("golden");
    let profile = local.path().join("data/profile");
    // Two partitions of the profile table, nested one level deeper; plus noise around them.
    for (dt, part) in [("dt=2025-11-21", "part-0"), ("dt=2025-11-22", "part-1")] {
        let bytes = std::fs::read(profile.join(format!("{part}.parquet"))).unwrap();
        moto.put("lake", &format!("t/profile/{dt}/{part}.parquet"), &bytes);
    }
    moto.put("lake", "t/profile/_SUCCESS", b"");
    moto.put("lake", "t/profile_old/dt=1/part-9.parquet", b"not parquet");
    moto.upload_dir("lake", &local.path().join("data"), "t/rest/");
    let expected = {
        let redis = RedisServer::start();
        let args = ["materialize", "--service", "scoring", "--end", GOLDEN_END];
        fsctl(local.path(), Some(&redis), &args).ok();
        vectors(&redis, "scoring")
    };
    for path in [
        "s3://lake/t/profile/",
        "s3://lake/t/profile",
        "s3://lake/t/profile/*/part-*.parquet",
        "s3://lake/t/profile/**/*.parquet",
        "s3://lake/t/profile/dt=2025-11-2[12]/part-?.parquet",
    ] {
        let repo = golden_repo_with(
            &moto.offline_store(),
            &[(PROFILE, format!("path: \"{path}\""))],
        );
        let redis = RedisServer::start();
        let args = ["materialize", "--service", "scoring", "--end", GOLDEN_END];
        fsctl_s3(repo.path(), &redis, &args).ok();
        let got = vectors(&redis, "scoring");
        let strip = |m: &BTreeMap<String, (Vec<u8>, i64)>| -> Vec<(String, Vec<u8>)> {
            m.iter().map(|(k, (b, _))| (k.clone(), b.clone())).collect()
        };
        assert_eq!(strip(&got), strip(&expected), "{path}");
        let m = manifest(&mut redis.con(), GOLDEN_PREFIX, "scoring");
        let files: Vec<String> = m["sources"]["profile"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            files,
            [
                "s3://lake/t/profile/dt=2025-11-21/part-0.parquet",
                "s3://lake/t/profile/dt=2025-11-22/part-1.parquet"
            ],
            "{path}"
        );
    }
}

/// A repo of one view over `s3://prune/events.parquet`: 24 row groups of one hour each, with
/// two wide columns no service needs; the window (ttl 2h) keeps the last two row groups.
fn pruning_repo(moto: &Moto) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let end_us: i64 = 1_763_856_000_000_000;
    let hour = 3_600_000_000i64;
    let rows_per_group = 2_000usize;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new(
            "event_timestamp",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("clicks", DataType::Int64, false),
        Field::new("payload_a", DataType::Utf8, false),
        Field::new("payload_b", DataType::Utf8, false),
    ]));
    let local = dir.path().join("events.parquet");
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(rows_per_group))
        .build();
    let mut w = ArrowWriter::try_new(
        std::fs::File::create(&local).unwrap(),
        schema.clone(),
        Some(props),
    )
    .unwrap();
    for g in 0..24i64 {
        let n = rows_per_group as i64;
        let ids: Vec<i64> = (0..n).collect();
        let ts: Vec<i64> = (0..n).map(|i| end_us - (24 - g) * hour + 1 + i).collect();
        let payload = |seed: i64| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("{seed}-{g}-{i}-{}", "x".repeat(40))),
            ))
        };
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("UTC")),
                Arc::new(Int64Array::from_iter_values((0..n).map(|i| g * 1000 + i))),
                payload(1),
                payload(2),
            ],
        )
        .unwrap();
        w.write(&batch).unwrap();
    }
    w.close().unwrap();
    moto.create_bucket("prune");
    moto.put("prune", "events.parquet", &std::fs::read(&local).unwrap());
    let yaml = format!(
        "project: prune\nonline_store:\n  type: redis\n  url: redis://127.0.0.1:1/0\n  \
         retry_attempts: 2\n  retry_max_delay: 50ms\n{}\
         entities:\n  - name: user\n    join_keys: [{{name: id, dtype: int64}}]\n\
         sources:\n  - name: events\n    path: s3://prune/events.parquet\n    \
         timestamp_field: event_timestamp\n\
         feature_views:\n  - name: activity\n    entities: [user]\n    source: events\n    \
         ttl: 2h\n    features:\n      - {{name: clicks, dtype: int64}}\n\
         feature_services:\n  - name: svc\n    features: [activity]\n    online_ttl: 36500d\n",
        moto.offline_store()
    );
    std::fs::write(dir.path().join("feature_store.yaml"), yaml).unwrap();
    (dir, local)
}

fn scan_error(scan: &ViewScan) -> String {
    match scan.run(Partition::ALL, None, 0, &|_| {}) {
        Ok(_) => panic!("the scan succeeded"),
        Err(e) => e.to_string(),
    }
}

const PRUNE_END_US: i64 = 1_763_856_000_000_000;

fn plan_pruning(repo: &Path) -> ViewScan {
    library_credentials();
    let repo = Repo::load(repo).unwrap();
    let window = Window {
        start_us: PRUNE_END_US - 2 * 3_600_000_000,
        end_us: PRUNE_END_US,
    };
    ViewScan::plan(&repo, 0, vec![0], window).unwrap()
}

#[test]
fn only_the_needed_column_chunks_of_the_kept_row_groups_are_fetched() {
    let moto = Moto::start();
    let (repo, local) = pruning_repo(&moto);
    let scan = plan_pruning(repo.path());
    assert_eq!(scan.row_groups_total, 24);
    assert_eq!(scan.row_groups_to_read(), 2);
    let latest = scan.run(Partition::ALL, None, 0, &|_| {}).unwrap();
    assert_eq!(latest.len(), 2_000);

    // What a reader needs, from the file's own metadata: the id, timestamp and clicks chunks
    // of the last two row groups.
    let file = std::fs::File::open(&local).unwrap();
    let meta = parquet::file::metadata::ParquetMetaDataReader::new()
        .parse_and_finish(&file)
        .unwrap();
    let needed: u64 = meta.row_groups()[22..]
        .iter()
        .flat_map(|rg| rg.columns()[..3].iter())
        .map(|c| c.byte_range().1)
        .sum();
    let object = std::fs::metadata(&local).unwrap().len();
    let (fetched, planned) = scan.fetched_bytes().expect("an object-store source");
    assert_eq!(planned, needed);
    let footer = object
        - meta
            .row_groups()
            .last()
            .unwrap()
            .columns()
            .last()
            .map_or(0, |c| {
                let (start, len) = c.byte_range();
                start + len
            });
    assert!(
        fetched <= needed + footer.max(64 * 1024) + needed / 10,
        "fetched {fetched} for {needed} needed (object {object})"
    );
    assert!(fetched * 5 < object, "fetched {fetched} of {object}");
}

#[test]
fn an_object_rewritten_after_planning_fails_the_scan() {
    let moto = Moto::start();
    let (repo, local) = pruning_repo(&moto);
    let scan = plan_pruning(repo.path());
    // Same size, other bytes: only the ETag tells.
    let mut bytes = std::fs::read(&local).unwrap();
    bytes[10] ^= 0xff;
    moto.put("prune", "events.parquet", &bytes);
    let e = scan_error(&scan);
    assert!(
        e.contains("s3://prune/events.parquet changed while fsctl read it"),
        "{e}"
    );
}

#[test]
fn a_store_that_dies_after_planning_fails_the_run_and_a_rerun_completes() {
    let mut moto = Moto::start();
    let (repo, local) = pruning_repo(&moto);
    let scan = plan_pruning(repo.path());
    moto.kill();
    let e = scan_error(&scan);
    assert!(e.contains("s3://prune/events.parquet"), "{e}");
    assert!(!e.contains(SECRET), "{e}");

    // The CLI: with the store down nothing is committed; once it is back the run completes.
    let redis = RedisServer::start();
    let end = "2025-11-23T00:00:00Z";
    let failed = fsctl_s3(repo.path(), &redis, &["materialize", "--end", end]);
    assert_ne!(failed.code, 0);
    assert!(
        failed.stderr.contains("s3://prune/events.parquet"),
        "{}",
        failed.stderr
    );
    assert_eq!(current(&mut redis.con(), "fs:prune", "svc"), None);
    moto.restart();
    moto.create_bucket("prune");
    moto.put("prune", "events.parquet", &std::fs::read(&local).unwrap());
    fsctl_s3(repo.path(), &redis, &["materialize", "--end", end]).ok();
    let mut con = redis.con();
    let snapshot = current(&mut con, "fs:prune", "svc").expect("committed");
    let v: Vec<u8> = redis::cmd("GET")
        .arg(format!("fs:prune:svc:{snapshot}:7"))
        .query(&mut con)
        .unwrap();
    // The latest row of entity 7 is in the last row group: clicks = 23 × 1000 + 7.
    assert_eq!(
        decode(&v).unwrap().values,
        [fsctl::vector::Value::Int(23_007)]
    );
}

#[test]
fn store_errors_name_the_url_and_never_the_secret() {
    let moto = Moto::start();
    moto.create_bucket("lake");
    moto.put("lake", "junk/a.parquet", b"this is not parquet at all");
    moto.put("lake", "empty/readme.txt", b"no parquet here");
    let cases = [
        ("s3://missing-bucket/t/", "the bucket does not exist"),
        (
            "s3://lake/junk/",
            "not a readable Parquet file (no PAR1 footer)",
        ),
        (
            "s3://lake/empty/",
            "`s3://lake/empty/` matches no Parquet objects",
        ),
        (
            "s3://lake/nothing.parquet",
            "s3://lake/nothing.parquet does not exist",
        ),
    ];
    for (path, needle) in cases {
        let repo = golden_repo_with(
            &moto.offline_store(),
            &[(
                ACCOUNTS,
                format!(
                    "path: \"{path}\"\n    storage_options: {{aws_secret_access_key: \"${{SECRET_VAR}}\"}}"
                ),
            )],
        );
        let redis = RedisServer::start();
        for args in [
            vec![
                "materialize",
                "--service",
                "balances",
                "--end",
                GOLDEN_END,
                "-v",
            ],
            vec!["validate"],
        ] {
            let out = s3_command(repo.path(), &redis, &args).output().unwrap();
            let (stdout, stderr) = (
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            );
            assert_ne!(out.status.code(), Some(0), "{path} {args:?}");
            let all = format!("{stdout}{stderr}");
            let object = if path.ends_with("junk/") {
                "s3://lake/junk/a.parquet"
            } else {
                path
            };
            assert!(
                all.contains(needle) && all.contains(object),
                "{path} {args:?}: {all}"
            );
            assert!(!all.contains(SECRET), "{path}: {all}");
        }
        assert_eq!(current(&mut redis.con(), GOLDEN_PREFIX, "balances"), None);
    }
}

#[test]
fn access_denied_names_the_object_and_the_credential_source() {
    // moto checks credentials against its IAM when told to: no key used here is known to it.
    let moto = Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]);
    let repo = golden_repo_with(
        &moto.offline_store(),
        &[(ACCOUNTS, "path: s3://private/accounts.parquet".to_owned())],
    );
    let redis = RedisServer::start();
    let args = ["materialize", "--service", "balances", "--end", GOLDEN_END];
    // Keys from the environment.
    let run = fsctl_s3(repo.path(), &redis, &args);
    assert_ne!(run.code, 0);
    for needle in [
        "s3://private/accounts.parquet",
        "access denied",
        "credentials from AWS_ACCESS_KEY_ID in the environment",
    ] {
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
    }
    assert!(!run.stderr.contains(SECRET) && !run.stdout.contains(SECRET));

    // Keys from a shared-credentials profile, as the AWS CLI would find them.
    let home = tempfile::tempdir().unwrap();
    let creds = home.path().join("credentials");
    std::fs::write(
        &creds,
        format!("[default]\naws_access_key_id = other\n[ci]\naws_access_key_id = AKIACI\naws_secret_access_key = {SECRET}\n"),
    )
    .unwrap();
    let out = fsctl_command(repo.path(), &redis.url(), &args)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_SHARED_CREDENTIALS_FILE", &creds)
        .env("AWS_CONFIG_FILE", home.path().join("config"))
        .env("AWS_PROFILE", "ci")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    let source = format!("credentials from profile `ci` of {}", creds.display());
    assert!(stderr.contains(&source), "{stderr}");
    assert!(!stderr.contains(SECRET), "{stderr}");
    assert_eq!(current(&mut redis.con(), GOLDEN_PREFIX, "balances"), None);
}

#[test]
fn secrets_never_reach_output_manifests_or_redis() {
    let moto = Moto::start();
    let repo = golden_on_s3(&moto, "sec");
    // The secret also as a storage option, through the environment.
    edit_yaml(
        repo.path(),
        "    aws_region: us-east-1\n",
        "    aws_region: us-east-1\n    aws_secret_access_key: \"${SECRET_VAR}\"\n",
    );
    let redis = RedisServer::start();
    let run = |args: &[&str]| {
        let out = s3_command(repo.path(), &redis, args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let mut all = String::new();
    all += &run(&["materialize", "--end", GOLDEN_END, "-v"]);
    all += &run(&["validate", "--online"]);
    all += &run(&["snapshots", "--format", "json"]);
    assert!(!all.contains(SECRET), "{all}");
    let mut con = redis.con();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut con).unwrap();
    for key in keys {
        let kind: String = redis::cmd("TYPE").arg(&key).query(&mut con).unwrap();
        if kind == "string" {
            let v: Vec<u8> = redis::cmd("GET").arg(&key).query(&mut con).unwrap();
            assert!(!String::from_utf8_lossy(&v).contains(SECRET), "{key}");
        }
    }
}

#[test]
fn a_file_url_reads_the_local_file() {
    let repo = scratch_repo("golden");
    let accounts = repo.path().join("data/accounts.parquet");
    edit_yaml(
        repo.path(),
        "path: data/accounts.parquet",
        &format!("path: file://{}", accounts.display()),
    );
    let (redis, local) = (RedisServer::start(), RedisServer::start());
    let args = ["materialize", "--service", "balances", "--end", GOLDEN_END];
    fsctl(repo.path(), Some(&redis), &args).ok();
    fsctl(&fixture("golden"), Some(&local), &args).ok();
    let strip = |m: BTreeMap<String, (Vec<u8>, i64)>| -> Vec<(String, Vec<u8>)> {
        m.into_iter().map(|(k, (b, _))| (k, b)).collect()
    };
    assert_eq!(
        strip(vectors(&redis, "balances")),
        strip(vectors(&local, "balances"))
    );
}

/// An Azure Blob Storage emulator (Azurite, from npm) on a free port, killed on drop.
struct Azurite {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

/// Azurite's well-known development account (public, documented by Microsoft).
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

impl Azurite {
    fn start() -> Azurite {
        let binary = std::env::var_os("FSCTL_AZURITE").map_or_else(
            || {
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("target/azurite/node_modules/.bin/azurite-blob")
            },
            PathBuf::from,
        );
        let dir = tempfile::tempdir().unwrap();
        let port = crate::harness::free_port();
        let child = Command::new(&binary)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .args(["--silent", "--skipApiVersionCheck", "--location"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{} must be installed (scripts/ensure-azurite.sh installs it): {e}",
                    binary.display()
                )
            });
        let azurite = Azurite {
            port,
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "azurite did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        azurite
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates `container` and uploads every file below `dir` as `{prefix}{relative path}`,
    /// with the Python SDK (object_store cannot create containers).
    fn upload_dir(&self, container: &str, dir: &Path, prefix: &str) {
        let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin/python");
        let script = "import os, sys\n\
            from azure.storage.blob import BlobServiceClient\n\
            url, key, container, root, prefix = sys.argv[1:]\n\
            svc = BlobServiceClient(account_url=url, credential={'account_name': 'devstoreaccount1', 'account_key': key})\n\
            c = svc.create_container(container)\n\
            for base, _, files in os.walk(root):\n\
            \x20   for f in files:\n\
            \x20       p = os.path.join(base, f)\n\
            \x20       with open(p, 'rb') as data:\n\
            \x20           c.upload_blob(prefix + os.path.relpath(p, root), data)\n";
        let status = Command::new(&python)
            .args(["-c", script])
            .arg(format!("{}/{AZURITE_ACCOUNT}", self.url()))
            .arg(AZURITE_KEY)
            .arg(container)
            .arg(dir)
            .arg(prefix)
            .status()
            .unwrap_or_else(|e| panic!("{}: {e} (scripts/ensure-azurite.sh)", python.display()));
        assert!(status.success(), "uploading to azurite failed");
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn golden_from_azure_blob_storage_gives_the_same_vectors_as_from_local_disk() {
    let azurite = Azurite::start();
    azurite.upload_dir("lake", &fixture("golden").join("data"), "golden/data/");
    let repo = golden_repo_with(
        "offline_store:\n  storage_options: {azure_storage_use_emulator: true}\n",
        &[
            (PROFILE, "path: az://lake/golden/data/profile/".to_owned()),
            (
                TXN,
                "path: \"az://lake/golden/data/txn*.parquet\"".to_owned(),
            ),
            (
                ACCOUNTS,
                "path: az://lake/golden/data/accounts.parquet".to_owned(),
            ),
        ],
    );
    std::fs::remove_dir_all(repo.path().join("data")).unwrap();
    for service in ["scoring", "balances"] {
        let (az_redis, local_redis) = (RedisServer::start(), RedisServer::start());
        let args = ["materialize", "--service", service, "--end", GOLDEN_END];
        let out = fsctl_command(repo.path(), &az_redis.url(), &args)
            .env("AZURITE_BLOB_STORAGE_URL", azurite.url())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        fsctl(&fixture("golden"), Some(&local_redis), &args).ok();
        let bytes = |m: BTreeMap<String, (Vec<u8>, i64)>| -> Vec<(String, Vec<u8>)> {
            m.into_iter().map(|(k, (b, _))| (k, b)).collect()
        };
        assert_eq!(
            bytes(vectors(&az_redis, service)),
            bytes(vectors(&local_redis, service)),
            "{service}"
        );
        let m = manifest(&mut az_redis.con(), GOLDEN_PREFIX, service).to_string();
        assert!(
            m.contains("az://lake/golden/data/") && m.contains("\"etag\""),
            "{m}"
        );
        assert!(!m.contains(AZURITE_KEY));
    }
}
