//! The `plumb` binary: parse the command line, set up logging, run the command, map the result
//! to an exit code. Everything else lives in the library.

use clap::Parser;

use plumb::cli::{Cli, LogFormat};

/// See Cargo.toml for why.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = Cli::parse();
    if cli.command.only_prints() {
        end_quietly_on_a_closed_stdout();
    }
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

/// Rust's runtime ignores SIGPIPE, so a write to a closed pipe fails and `println!` panics;
/// the default action ends the process silently instead, which is what a reader of `| head`
/// expects.
fn end_quietly_on_a_closed_stdout() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: called first thing in main, before any thread exists, and installs no handler
    // (SIG_DFL), so no code runs in signal context.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
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
