//! The `vantage` command: parse, call, print. Everything else lives in the
//! library (`vantage::cli` for the commands).

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = vantage::cli::Cli::parse();
    vantage::cli::init_tracing(cli.default_log_level(), cli.log_format);
    // One TLS crypto provider for every client (reqwest, kube, aws-sdk, the
    // check capabilities): aws-lc-rs. Fails only if one is already set.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "error: cannot start the async runtime: {e}"
            );
            return ExitCode::from(vantage::cli::EXIT_ERROR);
        }
    };
    let json = cli.command.wants_json();
    match runtime.block_on(cli.command.execute()) {
        Ok(code) => ExitCode::from(code),
        // The reader went away (`vantage validate | head -1`): stop quietly.
        Err(e) if vantage::cli::is_broken_pipe(&e) => {
            ExitCode::from(vantage::cli::EXIT_BROKEN_PIPE)
        }
        Err(e) => {
            if json {
                let _ = writeln!(std::io::stdout(), "{}", vantage::cli::error_json(&e));
            }
            // A closed stderr is no reason to panic.
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "error: {e}");
            for cause in e.chain().skip(1) {
                let _ = writeln!(stderr, "  caused by: {cause}");
            }
            ExitCode::from(vantage::cli::EXIT_ERROR)
        }
    }
}
