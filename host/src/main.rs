//! The `vantage` command: parse, call, print. Everything else lives in the
//! library (`vantage::cli` for the commands).

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
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(vantage::cli::EXIT_ERROR);
        }
    };
    match runtime.block_on(cli.command.execute()) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(vantage::cli::EXIT_ERROR)
        }
    }
}
