//! `vantage audit verify|list|show`: read and verify the audit log on S3.
//!
//! Credentials come from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`
//! (`AWS_SESSION_TOKEN`), else the AWS default chain.

use std::path::PathBuf;

use anyhow::Context;

use crate::audit::record::Keyring;
use crate::audit::s3::{DEFAULT_PREFIX, S3Config, S3Sink};
use crate::audit::verify::{VerifyOptions, verify_log};

/// Arguments of `vantage audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: AuditCommand,
}

/// The `vantage audit` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Walk the chain (every object version): hashes, signatures, gaps,
    /// edits, deletions, Object Lock retention, and (with --max-age) the age
    /// of the newest checkpoint. Exit code 0 when it verifies, 2 when not.
    Verify {
        /// Where the log is.
        #[command(flatten)]
        bucket: BucketArgs,
        /// Fail when the newest checkpoint record is older than this (e.g.
        /// "2h"; longer than `[audit] checkpoint_every`): without it, records
        /// removed from the end of the log cannot be detected.
        #[arg(long, value_name = "DURATION", value_parser = parse_max_age)]
        max_age: Option<std::time::Duration>,
        /// Do not require Object Lock retention on every version (a bucket
        /// without Object Lock).
        #[arg(long)]
        no_retention_check: bool,
    },
    /// One line per record: sequence number, time, verdict, kind, run id.
    List(BucketArgs),
    /// Make a new Ed25519 signing key: the secret seed goes to FILE (mode
    /// 0600; point `[audit] signing_key = "file:FILE"` at it), the public
    /// key (for `verify --public-key`) is printed.
    Keygen {
        /// Where to write the secret seed (64 hex digits); refuses to
        /// overwrite.
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Print one record as JSON (exit code 2 when it does not exist).
    Show {
        /// The sequence number.
        seq: u64,
        /// Where the log is.
        #[command(flatten)]
        bucket: BucketArgs,
    },
}

/// Where the audit log is, and the key that signs it.
#[derive(Debug, clap::Args)]
pub struct BucketArgs {
    /// The S3 bucket.
    #[arg(long, env = "VANTAGE_AUDIT_BUCKET")]
    pub bucket: String,
    /// Endpoint URL of an S3-compatible server (https://, or http:// to a
    /// loopback address); implies path-style addressing.
    #[arg(long, env = "VANTAGE_AUDIT_ENDPOINT")]
    pub endpoint: Option<String>,
    /// The region (default: AWS_REGION, else us-east-1).
    #[arg(long)]
    pub region: Option<String>,
    /// Path-style addressing (endpoint/bucket/key) even without --endpoint.
    #[arg(long)]
    pub path_style: bool,
    /// Key prefix of the audit objects.
    #[arg(long, default_value = DEFAULT_PREFIX)]
    pub prefix: String,
    /// File with Ed25519 public keys (64 hex digits or base64 of 32 bytes,
    /// one a line): the keyring. Repeatable. Required by `verify`; `list`
    /// and `show` check signatures when given. Keys introduced by a
    /// key-rotation record signed by a key of the keyring are trusted too.
    #[arg(long, value_name = "FILE")]
    pub public_key: Vec<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

impl BucketArgs {
    async fn sink(&self) -> anyhow::Result<S3Sink> {
        let mut config = S3Config::new(&self.bucket);
        config.prefix = self.prefix.clone();
        config.endpoint = self.endpoint.clone();
        config.region = self.region.clone();
        config.path_style = self.path_style || self.endpoint.is_some();
        S3Sink::new(config).await
    }

    fn keyring(&self) -> anyhow::Result<Option<Keyring>> {
        if self.public_key.is_empty() {
            return Ok(None);
        }
        let mut ring = Keyring::new();
        for path in &self.public_key {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the public key file {}", path.display()))?;
            ring.add_text(&text)
                .with_context(|| format!("the public key file {}", path.display()))?;
        }
        Ok(Some(ring))
    }

    fn options(&self) -> anyhow::Result<VerifyOptions> {
        Ok(VerifyOptions {
            keyring: self.keyring()?,
            max_age: None,
            require_retention: false,
        })
    }
}

fn parse_max_age(text: &str) -> Result<std::time::Duration, String> {
    crate::config::parse_timeout(text).map_err(|e| e.0)
}

/// Run the command; returns the exit code.
pub async fn execute(args: AuditArgs) -> anyhow::Result<u8> {
    match args.command {
        AuditCommand::Verify {
            bucket: b,
            max_age,
            no_retention_check,
        } => {
            let keyring = b
                .keyring()?
                .context("`vantage audit verify` needs --public-key FILE")?;
            let options = VerifyOptions {
                keyring: Some(keyring),
                max_age,
                require_retention: !no_retention_check,
            };
            let report = verify_log(&b.sink().await?, &options).await?;
            if b.json {
                let out = serde_json::json!({
                    "ok": report.is_ok(),
                    "location": report.location,
                    "records": report.records.len(),
                    "last_seq": report.last_seq(),
                    "key_ids": report.key_ids,
                    "newest_checkpoint": report.newest_checkpoint.as_ref().map(|c| serde_json::json!({
                        "seq": c.seq, "at": c.at, "age_seconds": c.age_seconds,
                    })),
                    "max_age_seconds": report.max_age.map(|d| d.as_secs()),
                    "truncation_checked": report.max_age.is_some(),
                    "retention_checked": report.retention_checked,
                    "issues": report.issues.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
                });
                outln!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                out!("{report}");
            }
            Ok(if report.is_ok() { 0 } else { 2 })
        }
        AuditCommand::List(b) => {
            let report = verify_log(&b.sink().await?, &b.options()?).await?;
            if b.json {
                outln!("{}", serde_json::to_string_pretty(&report.records)?);
            } else {
                for r in &report.records {
                    let verdict = r
                        .verdict
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "-".into());
                    outln!(
                        "{:>6}  {}  {:<5}  {:<14}  {}",
                        r.seq,
                        r.recorded_at,
                        verdict,
                        r.kind,
                        r.run_id
                    );
                }
                if !report.is_ok() {
                    err!("{report}");
                }
            }
            Ok(0)
        }
        AuditCommand::Keygen { out } => {
            use std::io::{Read, Write};
            let mut seed = [0u8; 32];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| f.read_exact(&mut seed))
                .context("reading /dev/urandom")?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options
                .open(&out)
                .with_context(|| format!("cannot create {} (it must not exist)", out.display()))?;
            writeln!(file, "{}", hex::encode(seed))?;
            file.sync_all()?;
            let key = crate::audit::AuditKey::from_seed(seed);
            errln!(
                "secret signing key written to {} (keep it secret; [audit] signing_key = \"file:{}\")",
                out.display(),
                out.display()
            );
            errln!(
                "public key (key id {}), for `vantage audit verify --public-key`:",
                key.key_id()
            );
            outln!("{}", key.public_key_hex());
            Ok(0)
        }
        AuditCommand::Show { seq, bucket: b } => {
            let report = verify_log(&b.sink().await?, &b.options()?).await?;
            let Some(record) = report.records.iter().find(|r| r.seq == seq) else {
                errln!("no audit record {seq} in {}", report.location);
                return Ok(2);
            };
            outln!("{}", serde_json::to_string_pretty(record)?);
            let related: Vec<_> = report
                .issues
                .iter()
                .filter(|i| i.to_string().contains(&format!("record {seq}")))
                .collect();
            for issue in related {
                errln!("warning: {issue}");
            }
            Ok(0)
        }
    }
}
