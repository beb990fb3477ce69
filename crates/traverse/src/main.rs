//! The `traverse` command: run the gateway, validate a configuration, run the multicluster
//! demo, print the version.

mod doctor;
mod run;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Pingora allocates per request; glibc's malloc showed up as arena-lock contention and
/// consolidation under load (see docs/performance.md), mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A multi-cluster gateway on Pingora in which a request across clusters stays one trace.
#[derive(Parser)]
#[command(name = "traverse", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Run {
        /// Static configuration file (YAML).
        #[arg(long, short, env = "TRAVERSE_CONFIG")]
        config: PathBuf,
    },
    /// Check the configuration and every manifest it would load; non-zero exit on errors.
    Validate {
        /// Static configuration file (YAML).
        #[arg(long, short, env = "TRAVERSE_CONFIG")]
        config: PathBuf,
        /// Treat warnings (unsupported fields, unresolved references) as errors too.
        #[arg(long)]
        strict: bool,
    },
    /// Start a parent and two child gateways with sample apps on this machine, send
    /// requests through them and print each request's trace across the clusters.
    Demo {
        /// Exit after printing the traces instead of running until Ctrl-C.
        #[arg(long)]
        once: bool,
        /// Read the example files from this directory instead of the built-in copy of
        /// examples/multicluster.
        #[arg(long, value_name = "DIR")]
        examples: Option<PathBuf>,
    },
    /// Ask a running gateway what needs attention: unresolved routes, uplinks and the
    /// health of children, telemetry drops. Exit 1 when something does, 2 when unreachable.
    Doctor {
        /// The gateway's admin listener.
        #[arg(long, env = "TRAVERSE_ADMIN", default_value = "127.0.0.1:9000")]
        admin: std::net::SocketAddr,
    },
    /// Print the version.
    Version,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => {
            let attach_logs = init_logging();
            match run::run(&config, attach_logs) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!("{error:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Validate { config, strict } => validate::validate(&config, strict),
        Command::Demo { once, examples } => {
            traverse_demo::run(traverse_demo::Options { once, examples })
        }
        Command::Doctor { admin } => doctor::doctor(admin),
        Command::Version => {
            println!("traverse {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
    }
}

/// Logs go to stderr through `tracing`; Pingora's `log` records are bridged in by the
/// subscriber. `RUST_LOG` overrides the default filter. The returned function sends
/// them over OTLP too, once `run` has read the configuration and started the pipeline.
fn init_logging() -> run::AttachLogs {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{reload, EnvFilter};
    use traverse_telemetry::log_bridge::OtlpLogLayer;

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(
            "info,pingora_core=warn,pingora_proxy=warn,pingora=warn,\
             hyper=warn,hyper_util=warn,h2=warn,tonic=warn,rustls=warn",
        )
    });
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let (otlp, handle) = reload::Layer::new(None::<OtlpLogLayer>);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(otlp)
        .try_init();
    Box::new(move |sink| {
        if let Err(error) = handle.reload(Some(OtlpLogLayer::new(sink))) {
            tracing::warn!(%error, "could not send the gateway's logs over OTLP");
        }
    })
}
