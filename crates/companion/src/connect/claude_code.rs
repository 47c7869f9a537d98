//! Claude Code keeps its MCP servers itself; we drive its own CLI
//! (`claude mcp get|add|remove`, user scope) instead of editing its files.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::error::{ConnectError, ENTRY_NAME};

/// How long one `claude` command may take (it is a Node.js program; a cold
/// start can take a few seconds).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// At most this much of `claude`'s error output is quoted.
const MAX_DETAIL: usize = 2000;

/// The line that adds us to Claude Code.
pub fn add_command(url: &str) -> String {
    format!("claude mcp add --transport http --scope user {ENTRY_NAME} {url}")
}

/// The line that removes us from Claude Code.
pub fn remove_command() -> String {
    format!("claude mcp remove --scope user {ENTRY_NAME}")
}

/// A `claude` program to run.
#[derive(Debug, Clone)]
pub struct ClaudeCli {
    /// The executable.
    pub program: PathBuf,
    /// Per command.
    pub timeout: Duration,
}

/// What Claude Code has under our name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    /// Nothing.
    Absent,
    /// An HTTP server at this URL (`None`: not an HTTP entry).
    At(Option<String>),
}

impl ClaudeCli {
    /// `claude` from a `PATH` value (`None`: not installed).
    pub fn find(path_var: Option<&OsStr>) -> Option<Self> {
        let names: &[&str] = if cfg!(windows) {
            &["claude.exe", "claude.cmd", "claude.bat"]
        } else {
            &["claude"]
        };
        std::env::split_paths(path_var?)
            .filter(|dir| dir.is_absolute())
            .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
            .find(|p| is_executable(p))
            .map(|program| Self {
                program,
                timeout: DEFAULT_TIMEOUT,
            })
    }

    /// Runs `claude mcp get spor`.
    pub async fn registered(&self) -> Result<Registered, ConnectError> {
        let out = self.run(&["mcp", "get", ENTRY_NAME]).await?;
        if !out.status.success() {
            // `claude mcp get` fails exactly when no server has that name.
            return Ok(Registered::Absent);
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let url = stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("URL:").map(|u| u.trim().to_string()));
        Ok(Registered::At(url))
    }

    /// Runs `claude mcp add …` for `url`.
    pub async fn add(&self, url: &str) -> Result<(), ConnectError> {
        let args = [
            "mcp",
            "add",
            "--transport",
            "http",
            "--scope",
            "user",
            ENTRY_NAME,
            url,
        ];
        self.run_ok(&args, &add_command(url)).await
    }

    /// Runs `claude mcp remove --scope user spor`.
    pub async fn remove(&self) -> Result<(), ConnectError> {
        self.run_ok(
            &["mcp", "remove", "--scope", "user", ENTRY_NAME],
            &remove_command(),
        )
        .await
    }

    async fn run_ok(&self, args: &[&str], shown: &str) -> Result<(), ConnectError> {
        let out = self.run(args).await?;
        if out.status.success() {
            return Ok(());
        }
        let mut detail = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if detail.is_empty() {
            detail = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        if detail.len() > MAX_DETAIL {
            let cut = (0..=MAX_DETAIL)
                .rev()
                .find(|i| detail.is_char_boundary(*i))
                .unwrap_or(0);
            detail.truncate(cut);
            detail.push('…');
        }
        Err(ConnectError::ClaudeFailed {
            command: shown.to_string(),
            status: out.status.to_string(),
            detail,
        })
    }

    /// Runs `claude` off the async workers, killed when the timeout passes.
    async fn run(&self, args: &[&str]) -> Result<std::process::Output, ConnectError> {
        let shown = format!("claude {}", args.join(" "));
        let child = tokio::process::Command::new(&self.program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(self.timeout, child).await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => Err(ConnectError::ClaudeStart {
                program: self.program.clone(),
                error: e.to_string(),
            }),
            Err(_) => Err(ConnectError::ClaudeTimeout {
                command: shown,
                seconds: self.timeout.as_secs_f32(),
            }),
        }
    }
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}
