//! `vantage push`, `pull`, `sign` and `keygen`: share components through
//! OCI registries, signed as cosign signs images (the `vantage-registry`
//! crate does the work).

use std::path::PathBuf;

use anyhow::Context as _;
use vantage_registry::signature::Algorithm;
use vantage_registry::{OciRef, SigningKey};

use super::{CacheArgs, RegistryArgs};
use crate::components::{Components, component_info};
use crate::runtime::Runtime;
use crate::runtime::engine::EngineOptions;

/// Arguments of `vantage push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The component file (`.wasm`).
    pub component: PathBuf,
    /// Where to push it: `[oci://]host[:port]/repository:tag`.
    pub reference: String,
    /// Where the check's source lives (`org.opencontainers.image.source`).
    #[arg(long, value_name = "URL")]
    pub source: Option<String>,
    /// Refuse a component file larger than this.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = super::parse_component_size)]
    pub max_component_size: u64,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Arguments of `vantage pull`.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// What to pull: `[oci://]host[:port]/repository:tag` or `@sha256:…`.
    pub reference: String,
    /// The file to write (default: the repository's last part, `.wasm`, in
    /// the current directory).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Refuse a component layer larger than this (from the manifest, then
    /// while reading).
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = super::parse_component_size)]
    pub max_component_size: u64,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Arguments of `vantage sign`.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// What to sign: `[oci://]host[:port]/repository@sha256:…` (a tag is
    /// resolved to its digest first, and the digest is what is signed).
    pub reference: String,
    /// The private key (PEM; ECDSA P-256 or Ed25519): PKCS#8 `PRIVATE
    /// KEY`, SEC1 `EC PRIVATE KEY`, or cosign's encrypted key (`cosign
    /// generate-key-pair`, `vantage keygen` with COSIGN_PASSWORD set),
    /// opened with the password in COSIGN_PASSWORD.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Arguments of `vantage keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Writes NAME.key (the private key, mode 0600) and NAME.pub. With
    /// COSIGN_PASSWORD set, the private key is encrypted with it in
    /// cosign's format (`cosign sign --key` reads it).
    #[arg(default_value = "cosign")]
    pub name: PathBuf,
    /// The kind of key.
    #[arg(long = "type", value_enum, default_value_t = KeyType::EcdsaP256)]
    pub kind: KeyType,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

/// The kinds of key `keygen` makes.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum KeyType {
    /// ECDSA on P-256 (cosign's default).
    EcdsaP256,
    /// Ed25519.
    Ed25519,
}

/// `vantage push`: load the component (so only a component that fits this
/// host is pushed, and its metadata becomes the annotations), then push.
pub async fn push(args: PushArgs) -> anyhow::Result<u8> {
    let reference = OciRef::parse(&args.reference)?;
    if reference.digest.is_some() {
        anyhow::bail!(
            "push to a tag (`{}:TAG`), not a digest",
            reference.repository
        );
    }
    let runtime = Runtime::new(&EngineOptions::default(), args.cache.dir())?;
    let text = args.component.display().to_string();
    let (check, _) = super::load_component(
        &runtime,
        &text,
        args.max_component_size,
        &args.registry,
        &args.cache,
    )
    .await?;
    let wasm = crate::runtime::cache::read_component(&args.component, args.max_component_size)?;
    let title = args
        .component
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let info = component_info(&check, &title, args.source.clone());
    let sources = Components::for_command(
        &args.registry.to_config(),
        args.max_component_size,
        args.cache.no_cache,
    )
    .with_progress(super::progress::stderr());
    let created = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let digest = sources
        .registry()
        .push(&wasm, &info, &reference, &created)
        .await
        .with_context(|| format!("cannot push to {reference}"))?;
    outln!("pushed {}", reference.pinned(&digest));
    Ok(0)
}

/// `vantage pull`: resolve, pull and check, then write the file
/// atomically (a temporary file renamed into place).
pub async fn pull(args: PullArgs) -> anyhow::Result<u8> {
    let sources = Components::for_command(
        &args.registry.to_config(),
        args.max_component_size,
        args.cache.no_cache,
    )
    .with_progress(super::progress::stderr());
    let text = if args.reference.starts_with("oci://") {
        args.reference.clone()
    } else {
        format!("oci://{}", args.reference)
    };
    let pulled = sources.pull(&text).await.map_err(anyhow::Error::msg)?;
    let output = args.output.clone().unwrap_or_else(|| {
        let name = pulled
            .reference
            .repository
            .rsplit('/')
            .next()
            .unwrap_or("component");
        PathBuf::from(format!("{name}.wasm"))
    });
    let tmp = output.with_file_name(format!(
        ".{}.part-{}",
        output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let written = std::fs::write(&tmp, &pulled.wasm).and_then(|()| std::fs::rename(&tmp, &output));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", output.display()));
    }
    let signed = pulled
        .verified
        .as_ref()
        .map(|v| format!(", signed by {} {}", v.key, v.fingerprint))
        .unwrap_or_default();
    outln!(
        "pulled {} ({} bytes{}{signed}) to {}",
        pulled.reference,
        pulled.wasm.len(),
        if pulled.from_cache {
            ", from the cache"
        } else {
            ""
        },
        output.display()
    );
    Ok(0)
}

/// `vantage sign`: resolve the reference to its manifest digest and add a
/// signature of it to the `sha256-<digest>.sig` tag.
pub async fn sign(args: SignArgs) -> anyhow::Result<u8> {
    let reference = OciRef::parse(&args.reference)?;
    let password = std::env::var("COSIGN_PASSWORD").ok();
    let key = SigningKey::from_file(&args.key, password.as_deref()).map_err(anyhow::Error::msg)?;
    let mut config = args.registry.to_config();
    // Signing needs no signature policy.
    config.verify = Default::default();
    let sources = Components::for_command(&config, 0, true);
    let signed = sources
        .registry()
        .sign(&reference, &key)
        .await
        .with_context(|| format!("cannot sign {reference}"))?;
    let public = key.public_key();
    let digest = &signed.digest;
    if signed.already {
        outln!(
            "{} is already signed by {} ({} {})",
            reference.pinned(digest),
            args.key.display(),
            public.algorithm(),
            public.fingerprint()
        );
    } else {
        outln!(
            "signed {} with {} ({} {}): {} now holds {} signature(s)",
            reference.pinned(digest),
            args.key.display(),
            public.algorithm(),
            public.fingerprint(),
            signed.tag,
            signed.signatures
        );
    }
    Ok(0)
}

/// `vantage keygen`: write a new key pair.
pub fn keygen(args: KeygenArgs) -> anyhow::Result<u8> {
    let algorithm = match args.kind {
        KeyType::EcdsaP256 => Algorithm::EcdsaP256,
        KeyType::Ed25519 => Algorithm::Ed25519,
    };
    let private_path = args.name.with_extension("key");
    let public_path = args.name.with_extension("pub");
    for path in [&private_path, &public_path] {
        if path.exists() && !args.force {
            anyhow::bail!("{} exists (use --force to overwrite)", path.display());
        }
    }
    let password = std::env::var("COSIGN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());
    let (private, public) =
        SigningKey::generate(algorithm, password.as_deref()).map_err(anyhow::Error::msg)?;
    write_private(&private_path, private.as_bytes())
        .with_context(|| format!("cannot write {}", private_path.display()))?;
    std::fs::write(&public_path, public)
        .with_context(|| format!("cannot write {}", public_path.display()))?;
    let encrypted = if password.is_some() {
        "encrypted with COSIGN_PASSWORD"
    } else {
        "not encrypted: set COSIGN_PASSWORD to encrypt it"
    };
    outln!(
        "wrote {} (the private key, mode 0600, {encrypted}) and {} ({algorithm})\n\
         sign with:  vantage sign REF --key {}\n\
         trust with: keys = [\"{}\"] in [registry.verify], or --verify-key {}",
        private_path.display(),
        public_path.display(),
        private_path.display(),
        public_path.display(),
        public_path.display()
    );
    Ok(0)
}

/// Write a private key readable by its owner only.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)
}
