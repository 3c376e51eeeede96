//! The `plumb` binary: parse the command line, set up logging, run the command, map the result
//! to an exit code. Everything else lives in the library.

use clap::Parser;

use plumb::cli::{Cli, LogFormat};

/// See Cargo.toml for why.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let code = match plumb::commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", render_error(&e));
            e.exit_code()
        }
    };
    std::process::exit(code);
}

fn render_error(e: &plumb::error::Error) -> String {
    match e {
        // Diagnostics render themselves, `error:` prefix included.
        plumb::error::Error::Invalid(_) => e.to_string(),
        _ => format!("error: {e}"),
    }
}

/// plumb's own log on stderr. In text form only warnings show by default (the run's plain lines
/// on stdout already tell the story); in JSON form, for log shippers, every run and task event
/// is an `info` record with its fields. `PLUMB_LOG` (e.g. `debug`) overrides the level.
fn init_logging(format: LogFormat) {
    let default = match format {
        LogFormat::Json => "info",
        LogFormat::Text => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PLUMB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
