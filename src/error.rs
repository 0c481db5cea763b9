//! The library's error type. Each variant maps to one exit code (SPEC §4): configuration and
//! usage problems exit 2, a failed job exits 1. Messages name the file, column, row or key.

use thiserror::Error;

use crate::repo::Finding;

#[derive(Debug, Error)]
pub enum Error {
    /// The feature repo is invalid; every finding is listed.
    #[error("{}", render_findings(.0))]
    Repo(Vec<Finding>),
    /// Bad configuration or command line (unresolvable `${VAR}`, bad URL, bad window...).
    #[error("{0}")]
    Config(String),
    /// Offline data that cannot be used as declared (missing file, column, bad type...).
    #[error("{0}")]
    Input(String),
    /// Redis refused, failed or could not be reached.
    #[error("{0}")]
    Redis(String),
    /// A data-quality gate or commit precondition stopped the run.
    #[error("{0}")]
    Refused(String),
    /// The run was interrupted by a signal.
    #[error("interrupted: stopped writing; nothing was committed")]
    Interrupted,
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Repo(_) | Error::Config(_) => 2,
            _ => 1,
        }
    }
}

fn render_findings(findings: &[Finding]) -> String {
    let mut out = format!(
        "the feature repo has {} problem{}:",
        findings.len(),
        if findings.len() == 1 { "" } else { "s" }
    );
    for f in findings {
        out.push_str("\n  ");
        out.push_str(&f.to_string());
    }
    out
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
