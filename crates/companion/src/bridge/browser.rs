//! Opening the authorization page in the person's browser: `$BROWSER` when
//! set (the convention xdg-open, Python and mcp-remote honour), otherwise the
//! system opener. The child never inherits stdout: that is the host's
//! JSON-RPC channel.

use std::process::Stdio;

/// Why no browser could be started.
#[derive(Debug, thiserror::Error)]
#[error("could not open a browser ({0})")]
pub struct OpenError(String);

/// The commands to try for `url`, in order: each `$BROWSER` entry
/// (separated like `PATH`; `%s` stands for the URL, else it is appended),
/// then the platform's opener.
pub fn commands(browser_env: Option<&str>, url: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    if let Some(list) = browser_env {
        for entry in std::env::split_paths(list) {
            let entry = entry.to_string_lossy().into_owned();
            let mut words: Vec<String> = entry.split_whitespace().map(str::to_string).collect();
            if words.is_empty() {
                continue;
            }
            if words.iter().any(|w| w.contains("%s")) {
                for w in &mut words {
                    *w = w.replace("%s", url);
                }
            } else {
                words.push(url.to_string());
            }
            out.push(words);
        }
    }
    let system: &[&str] = if cfg!(target_os = "macos") {
        &["open"]
    } else if cfg!(windows) {
        // `start` would need cmd's quoting rules for `&` in the URL.
        &["rundll32", "url.dll,FileProtocolHandler"]
    } else {
        &["xdg-open"]
    };
    let mut opener: Vec<String> = system.iter().map(|s| s.to_string()).collect();
    opener.push(url.to_string());
    out.push(opener);
    out
}

/// Starts the first command that can be spawned; does not wait for it (a
/// `$BROWSER` may stay until the page is done).
pub fn open(url: &str) -> Result<(), OpenError> {
    let env = std::env::var("BROWSER")
        .ok()
        .filter(|s| !s.trim().is_empty());
    let mut tried = Vec::new();
    for argv in commands(env.as_deref(), url) {
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        match cmd.spawn() {
            // Dropping the handle does not kill it; tokio reaps it.
            Ok(_child) => return Ok(()),
            Err(e) => tried.push(format!("{}: {e}", argv[0])),
        }
    }
    Err(OpenError(tried.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_entries_come_first_with_the_url_placed() {
        let cmds = commands(Some("/opt/b --new %s:firefox"), "http://x/?a=1&b=2");
        assert_eq!(cmds[0], ["/opt/b", "--new", "http://x/?a=1&b=2"]);
        assert_eq!(cmds[1], ["firefox", "http://x/?a=1&b=2"]);
        assert_eq!(cmds.len(), 3, "then the system opener");
    }

    #[test]
    fn without_browser_only_the_system_opener() {
        let cmds = commands(None, "http://x/");
        assert_eq!(cmds.len(), 1);
        assert_eq!(cmds[0].last().map(String::as_str), Some("http://x/"));
    }
}
