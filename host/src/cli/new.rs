//! `vantage new`: scaffold a check project that builds as-is: a Rust crate
//! (the default) or a Python project (`--lang python`, built with
//! componentize-py, the SDK and the WIT world copied in).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// Arguments of `vantage new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// Directory to create; its last component names the check.
    pub dir: PathBuf,
    /// Crate name (default: the directory's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Path of the `vantage-sdk` crate (default: the SDK next to this build of Vantage).
    #[arg(long, env = "VANTAGE_SDK_PATH")]
    pub sdk_path: Option<PathBuf>,
    /// The language of the check.
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    pub lang: Lang,
}

/// The languages `vantage new` scaffolds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// A Rust crate on the `vantage-sdk` crate (`cargo build --release`).
    Rust,
    /// A Python project on the `vantage_check` SDK (componentize-py).
    Python,
    /// A JavaScript project on the `vantage-check` SDK (componentize-js).
    Js,
    /// A TypeScript project on the `vantage-check` SDK (tsc, then
    /// componentize-js).
    Ts,
}

/// The JavaScript and TypeScript projects' shared files (placeholders
/// filled per language), then the SDK.
const JS_TEMPLATES: &[(&str, &str)] = &[
    (
        "package.json",
        include_str!("../../../sdk/js/template/package.json.tmpl"),
    ),
    (
        "build.sh",
        include_str!("../../../sdk/js/template/build.sh.tmpl"),
    ),
    (
        "README.md",
        include_str!("../../../sdk/js/template/README.md.tmpl"),
    ),
    (
        ".gitignore",
        include_str!("../../../sdk/js/template/gitignore.tmpl"),
    ),
    (
        "vantage-check/index.js",
        include_str!("../../../sdk/js/vantage-check/index.js"),
    ),
    (
        "vantage-check/index.d.ts",
        include_str!("../../../sdk/js/vantage-check/index.d.ts"),
    ),
];

/// The JavaScript check.
const JS_APP: &[(&str, &str)] = &[(
    "app.js",
    include_str!("../../../sdk/js/template/app.js.tmpl"),
)];

/// The TypeScript check and its compiler settings.
const TS_APP: &[(&str, &str)] = &[
    (
        "app.ts",
        include_str!("../../../sdk/js/template/app.ts.tmpl"),
    ),
    (
        "tsconfig.json",
        include_str!("../../../sdk/js/template/tsconfig.json.tmpl"),
    ),
];

/// The Python project: its own files, then the SDK and the WIT world it
/// builds against (copies, so the project builds with componentize-py
/// alone).
const PYTHON_TEMPLATES: &[(&str, &str)] = &[
    (
        "app.py",
        include_str!("../../../sdk/python/template/app.py.tmpl"),
    ),
    (
        "build.sh",
        include_str!("../../../sdk/python/template/build.sh.tmpl"),
    ),
    (
        "README.md",
        include_str!("../../../sdk/python/template/README.md.tmpl"),
    ),
    (
        ".gitignore",
        include_str!("../../../sdk/python/template/gitignore.tmpl"),
    ),
    (
        "vantage_check/__init__.py",
        include_str!("../../../sdk/python/vantage_check/__init__.py"),
    ),
    (
        "vantage_check/stdlib_http.py",
        include_str!("../../../sdk/python/vantage_check/stdlib_http.py"),
    ),
];

/// The `vantage:check@0.2.0` world and the WASI packages it uses.
const WIT_FILES: &[(&str, &str)] = &[
    ("wit/world.wit", include_str!("../../../wit/world.wit")),
    ("wit/common.wit", include_str!("../../../wit/common.wit")),
    ("wit/clock.wit", include_str!("../../../wit/clock.wit")),
    ("wit/dns.wit", include_str!("../../../wit/dns.wit")),
    ("wit/http.wit", include_str!("../../../wit/http.wit")),
    ("wit/log.wit", include_str!("../../../wit/log.wit")),
    ("wit/secrets.wit", include_str!("../../../wit/secrets.wit")),
    ("wit/tcp.wit", include_str!("../../../wit/tcp.wit")),
    ("wit/tls.wit", include_str!("../../../wit/tls.wit")),
    (
        "wit/deps/cli/cli.wit",
        include_str!("../../../wit/deps/cli/cli.wit"),
    ),
    (
        "wit/deps/clocks/clocks.wit",
        include_str!("../../../wit/deps/clocks/clocks.wit"),
    ),
    (
        "wit/deps/filesystem/filesystem.wit",
        include_str!("../../../wit/deps/filesystem/filesystem.wit"),
    ),
    (
        "wit/deps/http/http.wit",
        include_str!("../../../wit/deps/http/http.wit"),
    ),
    (
        "wit/deps/io/io.wit",
        include_str!("../../../wit/deps/io/io.wit"),
    ),
    (
        "wit/deps/random/random.wit",
        include_str!("../../../wit/deps/random/random.wit"),
    ),
    (
        "wit/deps/sockets/sockets.wit",
        include_str!("../../../wit/deps/sockets/sockets.wit"),
    ),
];

const TEMPLATES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../sdk/template/Cargo.toml.tmpl"),
    ),
    (
        ".cargo/config.toml",
        include_str!("../../../sdk/template/cargo-config.toml.tmpl"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../sdk/template/lib.rs.tmpl"),
    ),
    (
        "README.md",
        include_str!("../../../sdk/template/README.md.tmpl"),
    ),
    (
        ".gitignore",
        include_str!("../../../sdk/template/gitignore.tmpl"),
    ),
];

/// A crate name Cargo accepts and that reads well as a check name.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn default_sdk_path() -> Option<PathBuf> {
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
    built_in.join("Cargo.toml").exists().then_some(built_in)
}

/// Run the command.
pub fn execute(args: NewArgs) -> anyhow::Result<u8> {
    let name = match &args.name {
        Some(n) => n.clone(),
        None => args
            .dir
            .file_name()
            .and_then(|n| n.to_str())
            .context("cannot take a check name from the directory; pass --name")?
            .to_string(),
    };
    if !valid_name(&name) {
        bail!(
            "invalid check name {name:?}: use lowercase letters, digits, '-' and '_', starting with a letter"
        );
    }
    if args.dir.exists()
        && args
            .dir
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!("{} already exists and is not empty", args.dir.display());
    }
    match args.lang {
        Lang::Rust => rust(&args, &name),
        Lang::Python => python(&args, &name),
        Lang::Js | Lang::Ts => javascript(&args, &name),
    }
}

/// The JavaScript or TypeScript project: the check, `package.json` (the
/// pinned toolchain), `build.sh`, the SDK and the WIT world.
fn javascript(args: &NewArgs, name: &str) -> anyhow::Result<u8> {
    let ts = args.lang == Lang::Ts;
    let fill: &[(&str, &str)] = if ts {
        &[
            ("{{name}}", name),
            ("{{language}}", "TypeScript"),
            ("{{ts_dependency}}", ",\n    \"typescript\": \"7.0.2\""),
            ("{{ts_note}}", " and TypeScript 7.0.2"),
            (
                "{{compile}}",
                "tsc -p .\nmkdir -p dist/vantage-check && cp vantage-check/index.js dist/vantage-check/\n",
            ),
            ("{{entry}}", "dist/app.js"),
            ("{{entry_source}}", "app.ts"),
        ]
    } else {
        &[
            ("{{name}}", name),
            ("{{language}}", "JavaScript"),
            ("{{ts_dependency}}", ""),
            ("{{ts_note}}", ""),
            ("{{compile}}", ""),
            ("{{entry}}", "app.js"),
            ("{{entry_source}}", "app.js"),
        ]
    };
    write_files(&args.dir, JS_TEMPLATES, fill)?;
    write_files(&args.dir, if ts { TS_APP } else { JS_APP }, fill)?;
    write_files(&args.dir, WIT_FILES, &[])?;
    make_executable(&args.dir.join("build.sh"))?;
    let dir = args.dir.display();
    let language = if ts { "TypeScript" } else { "JavaScript" };
    outln!("Created {language} check `{name}` in {dir}");
    outln!();
    outln!("Build it:  cd {dir} && npm install && ./build.sh");
    outln!("Run it:    vantage run {dir}/{name}.wasm --target https://example.com/");
    Ok(0)
}

/// `chmod 755` (a build script).
fn make_executable(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot make {} executable", path.display()))?;
    }
    Ok(())
}

/// Write `files` under `dir`, `{{name}}` (and `replace`'s other
/// placeholders) filled in.
fn write_files(dir: &Path, files: &[(&str, &str)], replace: &[(&str, &str)]) -> anyhow::Result<()> {
    for (file, template) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let text = replace
            .iter()
            .fold(template.to_string(), |text, (from, to)| {
                text.replace(from, to)
            });
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// The Python project: `app.py`, `build.sh`, the SDK and the WIT world.
fn python(args: &NewArgs, name: &str) -> anyhow::Result<u8> {
    write_files(&args.dir, PYTHON_TEMPLATES, &[("{{name}}", name)])?;
    write_files(&args.dir, WIT_FILES, &[])?;
    make_executable(&args.dir.join("build.sh"))?;
    let dir = args.dir.display();
    outln!("Created Python check `{name}` in {dir}");
    outln!();
    outln!("Build it:  pip install componentize-py==0.25.1 && {dir}/build.sh");
    outln!("Run it:    vantage run {dir}/{name}.wasm --target https://example.com/");
    Ok(0)
}

/// The Rust crate, on the `vantage-sdk` crate at `--sdk-path`.
fn rust(args: &NewArgs, name: &str) -> anyhow::Result<u8> {
    let sdk = args
        .sdk_path
        .clone()
        .or_else(default_sdk_path)
        .context("cannot find the vantage-sdk crate; pass --sdk-path /path/to/vantage/sdk")?;
    let sdk = sdk
        .canonicalize()
        .with_context(|| format!("cannot find the vantage-sdk crate at {}", sdk.display()))?;
    let sdk = sdk.display().to_string();
    let artifact = name.replace('-', "_");
    write_files(
        &args.dir,
        TEMPLATES,
        &[
            ("{{name}}", name),
            ("{{sdk_path}}", &sdk),
            ("{{artifact}}", &artifact),
        ],
    )?;
    outln!("Created check `{name}` in {}", args.dir.display());
    outln!();
    outln!(
        "Build it:  cd {} && cargo build --release",
        args.dir.display()
    );
    outln!(
        "Run it:    vantage run {}/target/wasm32-wasip2/release/{artifact}.wasm --target https://example.com/",
        args.dir.display()
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(valid_name("my-check"));
        assert!(valid_name("check_2"));
        assert!(!valid_name("My-Check"));
        assert!(!valid_name("2check"));
        assert!(!valid_name(""));
        assert!(!valid_name("a b"));
    }

    #[test]
    fn scaffold_writes_every_file_with_placeholders_filled() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("my-check");
        execute(NewArgs {
            dir: target.clone(),
            name: None,
            sdk_path: default_sdk_path(),
            lang: Lang::Rust,
        })
        .unwrap();
        for (file, _) in TEMPLATES {
            let text = std::fs::read_to_string(target.join(file)).unwrap();
            assert!(!text.contains("{{"), "{file} still has a placeholder");
        }
        let manifest = std::fs::read_to_string(target.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("name = \"my-check\""), "{manifest}");
        // A second scaffold into the same, now non-empty directory is refused.
        assert!(
            execute(NewArgs {
                dir: target,
                name: None,
                sdk_path: default_sdk_path(),
                lang: Lang::Python,
            })
            .is_err()
        );
    }
}
