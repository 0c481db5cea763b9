//! rediss://: a redis-server that only speaks TLS, with a certificate from a CA the test makes.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

struct TlsRedis {
    port: u16,
    child: Child,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl is installed (scripts/ensure-redis.sh)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, and a server certificate for localhost / 127.0.0.1 signed by it.
pub(crate) fn make_certs(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=fsctl-test-ca",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

fn start_tls(dir: &Path) -> TlsRedis {
    let port = crate::harness::free_port();
    let child = Command::new("redis-server")
        .current_dir(dir)
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args([
            "--tls-cert-file",
            "server.crt",
            "--tls-key-file",
            "server.key",
            "--tls-ca-cert-file",
            "ca.crt",
            "--tls-auth-clients",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = TlsRedis { port, child };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let ping = Command::new("redis-cli")
            .current_dir(dir)
            .args([
                "--tls",
                "--cacert",
                "ca.crt",
                "-p",
                &port.to_string(),
                "ping",
            ])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&ping.stdout).contains("PONG") {
            return server;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("TLS redis-server did not start");
}

#[test]
fn materialize_and_get_over_tls_with_a_private_ca() {
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let server = start_tls(certs.path());
    let repo = scratch_repo("golden");
    let ca = certs.path().join("ca.crt");
    edit_yaml(
        repo.path(),
        "  key_prefix: fst\n",
        &format!("  key_prefix: fst\n  tls_ca_file: {}\n", ca.display()),
    );

    let url = format!("rediss://localhost:{}/0", server.port);
    fsctl_url(
        repo.path(),
        &url,
        &["materialize", "--end", "2025-11-23T00:00:00Z"],
    )
    .ok();
    let got = fsctl_url(
        repo.path(),
        &url,
        &[
            "--format",
            "json",
            "get",
            "--service",
            "scoring",
            "--entity",
            "customer_id=9",
        ],
    );
    assert_eq!(got.ok().json()["values"]["profile.age"], 90);

    // Plain text to the TLS port gets nowhere; a CA file with a redis:// URL is a config error.
    let plain = fsctl_url(
        repo.path(),
        &format!("redis://127.0.0.1:{}/0", server.port),
        &["get", "--service", "scoring", "--entity", "customer_id=9"],
    );
    assert_ne!(plain.code, 0);
    assert!(
        plain.stderr.contains("tls_ca_file is set but the URL"),
        "{}",
        plain.stderr
    );
    // Without the CA the server's certificate is not trusted.
    edit_yaml(
        repo.path(),
        &format!("  tls_ca_file: {}\n", ca.display()),
        "",
    );
    let untrusted = fsctl_url(
        repo.path(),
        &url,
        &["get", "--service", "scoring", "--entity", "customer_id=9"],
    );
    assert_eq!(untrusted.code, 1, "{}", untrusted.stderr);
}

#[test]
fn a_cluster_over_tls_is_written_and_read_through_its_tls_ports() {
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let cluster = RedisCluster::start_with(3, 0, Some(certs.path()));
    let repo = scratch_repo("golden");
    edit_yaml(repo.path(), "type: redis\n", "type: redis_cluster\n");
    edit_yaml(
        repo.path(),
        "  key_prefix: fst\n",
        &format!(
            "  key_prefix: fst\n  tls_ca_file: {}\n",
            certs.path().join("ca.crt").display()
        ),
    );
    // One seed is enough: the slot map names the other primaries' TLS ports.
    let url = format!("rediss://localhost:{}", cluster.tls_ports[0]);
    fsctl_url(repo.path(), &url, &["materialize", "--end", GOLDEN_END]).ok();
    let got = fsctl_url(
        repo.path(),
        &url,
        &[
            "--format",
            "json",
            "get",
            "--service",
            "scoring",
            "--entity",
            "customer_id=9",
        ],
    );
    assert_eq!(got.ok().json()["values"]["profile.age"], 90);
    // The keys spread over every primary, all written over TLS.
    for mut c in cluster.primary_cons() {
        let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
        assert!(n > 0, "a primary got no keys");
    }
}
