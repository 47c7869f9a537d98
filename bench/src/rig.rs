//! What every mode starts from: a temp dir, the sandbox upstream with one
//! minted PAT, and the companion's data dir with that PAT stored as its
//! account (file secret store). The companion itself is started by the mode,
//! as often as it needs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::Value;

use crate::procs::{self, Proc};

/// The upstream and the companion's data dir, ready for `serve`.
pub struct Rig {
    /// The sandbox upstream (dropped, so killed, before the temp dir goes).
    sandbox: Proc,
    /// `spor-companiond`.
    pub companion_bin: PathBuf,
    /// The sandbox's base URL.
    pub sandbox_base: String,
    /// The PAT the account holds.
    pub pat: String,
    /// The companion's `--data-dir`.
    pub data_dir: PathBuf,
    /// The stored account's id.
    pub account_id: String,
    root: PathBuf,
    tmp: Option<tempfile::TempDir>,
}

/// A binary in `dir`, or an error saying how to build it.
pub fn bin(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let p = dir.join(name);
    if !p.is_file() {
        bail!(
            "{} not found; build it first (cargo build --release -p spor-companion -p spor-sandbox)",
            p.display()
        );
    }
    Ok(p)
}

impl Rig {
    /// Starts the sandbox (`--remember-tokens`), mints a PAT and stores it
    /// as the companion's account.
    pub async fn start(bin_dir: &Path, prefix: &str) -> anyhow::Result<Self> {
        let sandbox_bin = bin(bin_dir, "spor-sandbox")?;
        let companion_bin = bin(bin_dir, "spor-companiond")?;
        let tmp = tempfile::Builder::new().prefix(prefix).tempdir()?;
        let root = tmp.path().to_path_buf();

        eprintln!("spor-bench: starting the sandbox upstream");
        let sandbox_dir = root.join("sandbox");
        let sandbox_dir_s = sandbox_dir.to_str().context("temp path")?;
        let (sandbox, sandbox_base, _) = procs::spawn_until_ready(
            "sandbox",
            &sandbox_bin,
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                sandbox_dir_s,
                "--remember-tokens",
            ],
            &[],
            &root,
        )
        .await?;
        let pat = procs::run(
            &sandbox_bin,
            &[
                "mint",
                "--data-dir",
                sandbox_dir_s,
                "--name",
                "Bench",
                "--email",
                "bench@example.com",
                "--org",
                "acme",
            ],
            None,
        )
        .await?
        .trim()
        .to_string();

        let mut rig = Rig {
            sandbox,
            companion_bin,
            sandbox_base,
            pat,
            data_dir: root.join("companion"),
            account_id: String::new(),
            root,
            tmp: Some(tmp),
        };
        let server = rig.sandbox_base.clone();
        let pat = rig.pat.clone();
        rig.cli(
            &["account", "add", "--server", &server, "--token-stdin"],
            Some(&pat),
        )
        .await?;
        let list: Value =
            serde_json::from_str(&rig.cli(&["account", "list", "--json"], None).await?)?;
        rig.account_id = list[0]["id"]
            .as_str()
            .context("no account after account add")?
            .to_string();
        Ok(rig)
    }

    /// The run's temp dir (logs live here).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The companion's SQLite file.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("companion.db")
    }

    /// Keeps the temp dir after the run (to look at a failure); its path.
    pub fn keep(&mut self) -> PathBuf {
        if let Some(t) = self.tmp.take() {
            let _ = t.keep();
        }
        self.root.clone()
    }

    /// `--data-dir <dir> --secret-store file` followed by `rest`.
    pub fn cli_args<'a>(&'a self, rest: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec![
            "--data-dir",
            self.data_dir.to_str().unwrap_or_default(),
            "--secret-store",
            "file",
        ];
        v.extend_from_slice(rest);
        v
    }

    /// Runs a `spor-companiond` command on this data dir; its stdout.
    pub async fn cli(&self, rest: &[&str], input: Option<&str>) -> anyhow::Result<String> {
        procs::run(&self.companion_bin, &self.cli_args(rest), input).await
    }

    /// Starts `spor-companiond serve --listen <listen>` with `RUST_LOG` set
    /// to `log`; the process, its base URL (no `/mcp`) and its start-up time.
    pub async fn serve(&self, listen: &str, log: &str) -> anyhow::Result<(Proc, String, Duration)> {
        let args = self.cli_args(&["serve", "--listen", listen]);
        let (p, mcp_url, took) = procs::spawn_until_ready(
            "companion",
            &self.companion_bin,
            &args,
            &[("RUST_LOG", log)],
            &self.root,
        )
        .await?;
        let base = mcp_url
            .strip_suffix("/mcp")
            .context("ready line without /mcp")?
            .to_string();
        Ok((p, base, took))
    }

    /// Stops the sandbox (SIGTERM; an error if it does not exit cleanly).
    pub async fn stop(self) -> anyhow::Result<()> {
        self.sandbox.stop().await
    }
}
