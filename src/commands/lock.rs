//! `fsctl lock`: acknowledge the services' current schemas by rewriting `fsctl.lock`.

use fsctl::engine::lockfile;

use super::{Global, print, print_json};

pub const HELP: &str = "\
Examples:
  fsctl lock                          after reviewing a schema change, then commit fsctl.lock
  fsctl --repo feature_repo lock";

/// Rewrite fsctl.lock with the services' current schema fingerprints.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {}

pub fn run(global: &Global, _args: &Args) -> anyhow::Result<()> {
    let repo = global.load_repo()?;
    let path = lockfile::write(&repo)?;
    let n = repo.services.len();
    if global.json() {
        print_json(&serde_json::json!({
            "command": "lock",
            "path": path,
            "services": repo.services.iter().map(|s| serde_json::json!({
                "service": s.name,
                "fingerprint": repo.fingerprint(s).to_string(),
            })).collect::<Vec<_>>(),
        }))
    } else if !global.quiet {
        print(&format!(
            "wrote {} ({n} service{})\n",
            path.display(),
            if n == 1 { "" } else { "s" }
        ))
    } else {
        Ok(())
    }
}
