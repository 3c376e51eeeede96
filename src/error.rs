//! The errors a command can end with, and the exit code each one maps to.
//!
//! Each layer has its own error type (loading, state, locks); this enum gathers them so that
//! `main` maps a result to an exit code in exactly one place.

use crate::diag::FileDiagnostics;
use crate::exit;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// One or more files failed to load; every problem is inside.
    #[error("{}", render_all(.0))]
    Invalid(Vec<FileDiagnostics>),
    /// A mistake on the command line that clap cannot see (unknown param, missing pipeline).
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Locked(#[from] crate::lock::LockedError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error("{0}")]
    Io(String),
}

fn render_all(files: &[FileDiagnostics]) -> String {
    let mut out = String::new();
    for f in files {
        out.push_str(&f.render());
    }
    let n: usize = files.iter().map(|f| f.items.len()).sum();
    out.push_str(&format!(
        "\n{n} error{} in {}",
        if n == 1 { "" } else { "s" },
        files
            .iter()
            .map(|f| f.path().display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Invalid(_) | Error::Usage(_) => exit::USAGE,
            Error::Locked(_) => exit::LOCKED,
            Error::State(_) | Error::Io(_) => exit::INTERNAL,
        }
    }

    pub fn usage(msg: impl Into<String>) -> Error {
        Error::Usage(msg.into())
    }
}

impl From<Box<FileDiagnostics>> for Error {
    fn from(d: Box<FileDiagnostics>) -> Error {
        Error::Invalid(vec![*d])
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
