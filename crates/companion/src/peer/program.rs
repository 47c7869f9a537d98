//! What the OS tells about the programs at loopback sockets, as the
//! consent and the logs show it.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// A process on this machine, as the OS describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Program {
    /// Its process id (it may have exited since).
    pub pid: u32,
    /// The path of its executable, when the OS tells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// The assistant it is, when the executable and arguments are a known
    /// host's. Derived from what the process runs, not from what it claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
}

impl std::fmt::Display for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let exe = self.exe.as_deref().unwrap_or("unknown executable");
        match &self.app {
            Some(app) => write!(f, "{app} ({exe}, pid {})", self.pid),
            None => write!(f, "{exe} (pid {})", self.pid),
        }
    }
}

/// Who owns the other end of a connection, measured against our own user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The OS user this companion runs as.
    Same,
    /// Another OS user (its uid).
    Other(u32),
    /// The OS could not say (the peer already left, or no table answered).
    Unknown,
    /// This OS offers no way to tell; nothing is checked.
    Unchecked,
}

/// Who listens on a loopback port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Listener {
    /// Nobody listens there.
    Nobody,
    /// A program of our own OS user.
    Program(Program),
    /// A socket of another OS user (we cannot see its program).
    OtherUser {
        /// The owner's uid.
        uid: u32,
    },
    /// The OS gave no answer.
    Unknown,
}

/// The names [`known_app`] gives.
const KNOWN_APPS: [&str; 6] = [
    "Spor Companion bridge (Claude Desktop)",
    "Claude Code",
    "VS Code",
    "Cursor",
    "Claude Desktop",
    "mcp-remote",
];

/// The known host called `name` (as a metadata document may name its
/// client), if there is one, spelled as [`known_app`] spells it.
pub fn known_app_named(name: &str) -> Option<&'static str> {
    KNOWN_APPS
        .iter()
        .copied()
        .find(|app| app.eq_ignore_ascii_case(name.trim()))
}

/// The host an executable and its arguments are, from a short table of
/// known assistants; `None` rather than a guess.
pub fn known_app(exe: &Path, args: &[String]) -> Option<&'static str> {
    let file = exe.file_name()?.to_str()?.to_ascii_lowercase();
    let file = file.strip_suffix(".exe").unwrap_or(&file);
    // Scripts run by an interpreter name the script in their arguments.
    let runs = |needle: &str| args.iter().skip(1).any(|a| a.contains(needle));
    match file {
        "spor-companiond" | "spor-companion" if args.get(1).is_some_and(|a| a == "bridge") => {
            Some("Spor Companion bridge (Claude Desktop)")
        }
        "claude" => Some("Claude Code"),
        "code" | "code-insiders" | "codium" => Some("VS Code"),
        "cursor" => Some("Cursor"),
        "claude-desktop" => Some("Claude Desktop"),
        "node" | "nodejs" | "bun" | "deno" if runs("mcp-remote") => Some("mcp-remote"),
        "node" | "nodejs" | "bun" if runs("claude-code") || runs("/bin/claude") => {
            Some("Claude Code")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(exe: &str, args: &[&str]) -> Option<&'static str> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        known_app(Path::new(exe), &args)
    }

    #[test]
    fn every_name_known_app_gives_is_a_known_app_name() {
        for (exe, args) in [
            (
                "/usr/bin/spor-companiond",
                &["spor-companiond", "bridge", "u"][..],
            ),
            ("/usr/bin/claude", &["claude"][..]),
            ("/usr/bin/code", &["code"][..]),
            ("/usr/bin/cursor", &["cursor"][..]),
            ("/usr/bin/claude-desktop", &["claude-desktop"][..]),
            (
                "/usr/bin/node",
                &["node", "/x/mcp-remote/dist/proxy.js"][..],
            ),
        ] {
            let name = app(exe, args).expect("known");
            assert_eq!(known_app_named(name), Some(name));
        }
        assert_eq!(known_app_named("claude code"), Some("Claude Code"));
        assert_eq!(known_app_named("Claude Code Pro"), None);
    }

    #[test]
    fn known_hosts_are_named_from_what_runs() {
        assert_eq!(
            app(
                "/usr/bin/spor-companiond",
                &["spor-companiond", "bridge", "http://x"]
            ),
            Some("Spor Companion bridge (Claude Desktop)")
        );
        assert_eq!(
            app("/usr/bin/spor-companiond", &["spor-companiond", "serve"]),
            None
        );
        assert_eq!(
            app(
                "/usr/bin/node",
                &["node", "/x/node_modules/.bin/mcp-remote", "http://x"]
            ),
            Some("mcp-remote")
        );
        assert_eq!(app("/usr/bin/node", &["node", "attack.js"]), None);
        assert_eq!(app("/usr/bin/python3", &["python3", "claude.py"]), None);
        assert_eq!(
            app("/home/p/.local/bin/claude", &["claude"]),
            Some("Claude Code")
        );
    }

    #[test]
    fn a_program_reads_with_its_app_when_known() {
        let p = Program {
            pid: 42,
            exe: Some("/usr/bin/node".into()),
            app: Some("mcp-remote".into()),
        };
        assert_eq!(p.to_string(), "mcp-remote (/usr/bin/node, pid 42)");
        let q = Program {
            pid: 7,
            exe: None,
            app: None,
        };
        assert_eq!(q.to_string(), "unknown executable (pid 7)");
    }
}
