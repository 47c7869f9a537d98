//! `connect`: the config writers against fixture files (byte-exact results,
//! the one-time backup, idempotence, exact undo, malformed files left alone),
//! file safety (symlinks, permissions), Claude Code through a fake `claude`,
//! the Claude Desktop extension (.mcpb), and the real `spor-companiond
//! connect` binary with a throw-away HOME.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use spor_companion::connect::{
    self, backup_path, Bridge, Change, ClaudeCli, ConnectError, Host, Places, Plan, State, Via,
};
use tempfile::TempDir;

const PROGRAM: &str = "/opt/spor/bin/spor-companiond";
const URL: &str = "http://127.0.0.1:7767/mcp";

fn plan(host: Host, url: &str) -> Plan {
    Plan {
        host,
        url: url.to_string(),
        via: Via::Bridge,
        bridge: Bridge {
            program: PROGRAM.into(),
            args: Vec::new(),
        },
        config: None,
    }
}

fn places(dir: &Path) -> Places {
    Places {
        home: dir.join("home"),
        config_dir: dir.join("home").join(".config"),
    }
}

fn config_path(host: Host, dir: &Path) -> PathBuf {
    places(dir).config_path(host).expect("a file host")
}

fn read(path: &Path) -> Option<Vec<u8>> {
    fs::read(path).ok()
}

fn text(bytes: &Option<Vec<u8>>) -> String {
    bytes.as_deref().map_or("<missing>".into(), |b| {
        String::from_utf8_lossy(b).into_owned()
    })
}

/// Every file in the config's folder, names only, sorted.
fn listing(path: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(path.parent().expect("parent"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

// ---------------------------------------------------------------- fixtures

struct Case {
    name: String,
    input: Option<Vec<u8>>,
    written: Option<Vec<u8>>,
    removed: Option<Vec<u8>>,
    error: Option<String>,
}

/// `<case>.json` (absent: the "missing file" case), `<case>.written.json`,
/// `<case>.removed.json` (absent: removal gives the input back) or
/// `<case>.error.txt` (the exact message; `{path}` stands for the file).
fn cases(host: Host) -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/connect")
        .join(host.id());
    let mut names: Vec<String> = fs::read_dir(&dir)
        .expect("fixture folder")
        .filter_map(Result::ok)
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_suffix(".written.json")
                .or_else(|| n.strip_suffix(".error.txt"))
                .map(str::to_string)
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| Case {
            input: read(&dir.join(format!("{name}.json"))),
            written: read(&dir.join(format!("{name}.written.json"))),
            removed: read(&dir.join(format!("{name}.removed.json"))),
            error: fs::read_to_string(dir.join(format!("{name}.error.txt")))
                .ok()
                .map(|s| s.trim_end().to_string()),
            name,
        })
        .collect()
}

/// Runs one change and checks the backup rule: the first change to an
/// existing file copies it to `<file>.spor-backup`; later ones never touch it.
fn step(
    path: &Path,
    first_backup: &mut Option<Vec<u8>>,
    what: &str,
    run: impl FnOnce() -> connect::Outcome,
) -> connect::Outcome {
    let before = read(path);
    let outcome = run();
    let changed = read(path) != before;
    let backup = backup_path(path);
    match (&first_backup, changed, &before) {
        (None, true, Some(before)) => {
            assert_eq!(
                outcome.backup.as_deref(),
                Some(backup.as_path()),
                "{what}: backup made"
            );
            assert_eq!(
                read(&backup).as_ref(),
                Some(before),
                "{what}: backup holds the file as it was"
            );
            *first_backup = Some(before.clone());
        }
        _ => assert_eq!(outcome.backup, None, "{what}: no new backup"),
    }
    assert_eq!(
        read(&backup),
        first_backup.clone(),
        "{what}: the backup never changes"
    );
    outcome
}

fn check_case(host: Host, case: &Case) {
    let name = format!("{}/{}", host.id(), case.name);
    let dir = TempDir::new().expect("tempdir");
    let places = places(dir.path());
    let path = config_path(host, dir.path());
    if let Some(input) = &case.input {
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(&path, input).expect("write input");
    }
    let plan = plan(host, URL);

    if let Some(expected) = &case.error {
        let expected = expected.replace("{path}", &path.display().to_string());
        for (what, result) in [
            ("write", connect::write_file(&plan, &places)),
            ("remove", connect::remove_file(&plan, &places)),
        ] {
            let err = result.expect_err(&format!("{name}: {what} must fail"));
            assert_eq!(err.to_string(), expected, "{name}: {what} message");
            assert_eq!(err.code(), "invalid_config");
        }
        assert_eq!(read(&path), case.input, "{name}: left byte-identical");
        assert_eq!(
            listing(&path),
            vec![path.file_name().unwrap().to_string_lossy().into_owned()],
            "{name}: no backup, no temp file"
        );
        return;
    }

    let written = case.written.clone().expect("written fixture");
    let was = connect::file_state(&plan, &places).expect("state before");
    let mut first_backup = None;

    // Write: byte-exact.
    let o = step(&path, &mut first_backup, &format!("{name} write"), || {
        connect::write_file(&plan, &places).expect("write")
    });
    assert_eq!(
        text(&read(&path)),
        text(&Some(written.clone())),
        "{name}: written bytes"
    );
    let expected_change = match was {
        State::Connected => Change::AlreadyConnected,
        State::NotConnected => Change::Added,
        State::Outdated => Change::Updated,
    };
    assert_eq!(o.change, expected_change, "{name}");
    assert_eq!(o.file.as_deref(), Some(path.as_path()));
    if was == State::Connected {
        assert_eq!(
            Some(&written),
            case.input.as_ref(),
            "{name}: a no-op leaves the input"
        );
    }
    assert_eq!(
        connect::file_state(&plan, &places).expect("state"),
        State::Connected
    );

    // Write again: nothing written at all.
    let mtime = fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("mtime");
    let o = step(
        &path,
        &mut first_backup,
        &format!("{name} write again"),
        || connect::write_file(&plan, &places).expect("write again"),
    );
    assert_eq!(o.change, Change::AlreadyConnected, "{name}: idempotent");
    assert_eq!(read(&path), Some(written.clone()), "{name}: same bytes");
    assert_eq!(
        fs::metadata(&path).and_then(|m| m.modified()).ok(),
        Some(mtime),
        "{name}: not rewritten"
    );

    // Remove: exactly undone (or the documented result).
    let o = step(&path, &mut first_backup, &format!("{name} remove"), || {
        connect::remove_file(&plan, &places).expect("remove")
    });
    assert_eq!(o.change, Change::Removed, "{name}");
    let undone = case.removed.clone().or(case.input.clone());
    assert_eq!(text(&read(&path)), text(&undone), "{name}: removed bytes");
    assert_eq!(
        connect::file_state(&plan, &places).expect("state"),
        State::NotConnected
    );
    if case.removed.is_none() {
        assert_eq!(
            read(&path),
            case.input,
            "{name}: write then remove gives the original back"
        );
    }

    // Remove again: nothing to do.
    let o = step(
        &path,
        &mut first_backup,
        &format!("{name} remove again"),
        || connect::remove_file(&plan, &places).expect("remove again"),
    );
    assert_eq!(o.change, Change::NothingToRemove, "{name}");
    assert_eq!(read(&path), undone, "{name}");

    // A later write never replaces the first backup.
    step(
        &path,
        &mut first_backup,
        &format!("{name} write after remove"),
        || connect::write_file(&plan, &places).expect("write after remove"),
    );
    let mut expected_files = vec![path.file_name().unwrap().to_string_lossy().into_owned()];
    if first_backup.is_some() {
        expected_files.push(
            backup_path(&path)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        );
    }
    expected_files.sort();
    assert_eq!(listing(&path), expected_files, "{name}: no temp files left");
}

fn check_fixtures(host: Host, at_least: usize) {
    let cases = cases(host);
    assert!(
        cases.len() >= at_least,
        "{} fixtures found for {}",
        cases.len(),
        host.id()
    );
    for required in [
        "missing",
        "empty",
        "compact",
        "tabs-crlf",
        "existing-spor",
        "other-entries",
        "truncated",
        "trailing-garbage",
        "root-array",
        "container-not-object",
    ] {
        assert!(
            cases.iter().any(|c| c.name == required),
            "{}: no {required} fixture",
            host.id()
        );
    }
    for case in &cases {
        check_case(host, case);
    }
}

#[test]
fn claude_desktop_fixtures_are_written_removed_and_refused_byte_exactly() {
    check_fixtures(Host::ClaudeDesktop, 17);
}

#[test]
fn vscode_fixtures_keep_comments_and_trailing_commas() {
    check_fixtures(Host::VsCode, 14);
}

#[test]
fn cursor_fixtures_are_written_removed_and_refused_byte_exactly() {
    check_fixtures(Host::Cursor, 11);
}

// ---------------------------------------------------------------- entries and paths

#[test]
fn config_paths_follow_the_given_home_and_config_folder() {
    let places = Places {
        home: "/h".into(),
        config_dir: "/h/cfg".into(),
    };
    assert_eq!(
        places.config_path(Host::ClaudeDesktop),
        Some(PathBuf::from("/h/cfg/Claude/claude_desktop_config.json"))
    );
    assert_eq!(
        places.config_path(Host::VsCode),
        Some(PathBuf::from("/h/cfg/Code/User/mcp.json"))
    );
    assert_eq!(
        places.config_path(Host::Cursor),
        Some(PathBuf::from("/h/.cursor/mcp.json"))
    );
    assert_eq!(places.config_path(Host::ClaudeCode), None);
    let mut p = plan(Host::Cursor, URL);
    p.config = Some("/elsewhere/mcp.json".into());
    assert_eq!(
        p.config_file(&places),
        Some(PathBuf::from("/elsewhere/mcp.json"))
    );
}

#[test]
fn claude_desktop_entry_passes_non_default_bridge_options_and_mcp_remote_needs_no_bridge() {
    let dir = TempDir::new().expect("tempdir");
    let places = places(dir.path());
    let mut p = plan(Host::ClaudeDesktop, URL);
    p.bridge.args = vec![
        "--secret-store".into(),
        "file".into(),
        "--data-dir".into(),
        "/d".into(),
    ];
    connect::write_file(&p, &places).expect("write");
    let v: serde_json::Value = serde_json::from_slice(
        &fs::read(config_path(Host::ClaudeDesktop, dir.path())).expect("read"),
    )
    .expect("json");
    assert_eq!(
        v["mcpServers"]["spor"],
        serde_json::json!({"command": PROGRAM, "args": ["bridge", URL, "--secret-store", "file", "--data-dir", "/d"]})
    );
    p.via = Via::McpRemote;
    let o = connect::write_file(&p, &places).expect("write mcp-remote");
    assert_eq!(o.change, Change::Updated);
    let v: serde_json::Value = serde_json::from_slice(
        &fs::read(config_path(Host::ClaudeDesktop, dir.path())).expect("read"),
    )
    .expect("json");
    assert_eq!(
        v["mcpServers"]["spor"],
        serde_json::json!({"command": "npx", "args": ["-y", "mcp-remote", URL]})
    );
}

#[test]
fn a_new_port_replaces_only_the_value_and_remove_still_restores_the_original() {
    let dir = TempDir::new().expect("tempdir");
    let places = places(dir.path());
    let path = config_path(Host::VsCode, dir.path());
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let original = "{\n\t// mine\n\t\"servers\": {\n\t\t\"a\": {\"type\": \"http\", \"url\": \"https://a/mcp\"}\n\t}\n}\n";
    fs::write(&path, original).unwrap();
    connect::write_file(&plan(Host::VsCode, URL), &places).expect("write");
    let o = connect::write_file(&plan(Host::VsCode, "http://127.0.0.1:45001/mcp"), &places)
        .expect("rewrite");
    assert_eq!(o.change, Change::Updated);
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "{\n\t// mine\n\t\"servers\": {\n\t\t\"a\": {\"type\": \"http\", \"url\": \"https://a/mcp\"},\n\t\t\"spor\": {\n\t\t\t\"type\": \"http\",\n\t\t\t\"url\": \"http://127.0.0.1:45001/mcp\"\n\t\t}\n\t}\n}\n"
    );
    connect::remove_file(&plan(Host::VsCode, URL), &places).expect("remove");
    assert_eq!(fs::read_to_string(&path).unwrap(), original);
    assert_eq!(
        fs::read_to_string(backup_path(&path)).unwrap(),
        original,
        "backup of the very first state"
    );
}

#[cfg(unix)]
#[test]
fn a_symlinked_config_is_edited_in_its_target_and_stays_a_link_with_its_permissions() {
    use std::os::unix::fs::PermissionsExt;
    const ORIGINAL: &str = "{\"mcpServers\": {\"a\": {\"url\": \"x\"}}}\n";
    let dir = TempDir::new().expect("tempdir");
    let places = places(dir.path());
    let path = config_path(Host::Cursor, dir.path());
    let dotfiles = dir.path().join("dotfiles");
    fs::create_dir_all(&dotfiles).unwrap();
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let target = dotfiles.join("cursor-mcp.json");
    fs::write(&target, ORIGINAL).unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink("../../dotfiles/cursor-mcp.json", &path).unwrap();

    let o = connect::write_file(&plan(Host::Cursor, URL), &places).expect("write");
    assert_eq!(o.change, Change::Added);
    assert!(
        fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink(),
        "still a link"
    );
    assert_eq!(
        fs::read_to_string(&target).unwrap(),
        "{\"mcpServers\": {\"a\": {\"url\": \"x\"}, \"spor\": {\"url\": \"http://127.0.0.1:7767/mcp\"}}}\n"
    );
    assert_eq!(
        fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o600,
        "mode kept"
    );
    let backup = backup_path(&target);
    assert_eq!(
        o.backup.as_deref(),
        Some(backup.as_path()),
        "backup beside the real file"
    );
    assert_eq!(fs::read_to_string(&backup).unwrap(), ORIGINAL);
    assert_eq!(
        fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
        0o600,
        "backup as private as the file"
    );
    connect::remove_file(&plan(Host::Cursor, URL), &places).expect("remove");
    assert_eq!(fs::read_to_string(&target).unwrap(), ORIGINAL);
    assert!(fs::symlink_metadata(&path)
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn non_utf8_deeply_nested_and_directory_configs_are_refused_untouched() {
    let dir = TempDir::new().expect("tempdir");
    let places = places(dir.path());
    let path = config_path(Host::ClaudeDesktop, dir.path());
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let p = plan(Host::ClaudeDesktop, URL);

    fs::write(&path, b"{\"a\": \"\xff\"}").unwrap();
    let err = connect::write_file(&p, &places).expect_err("not utf-8");
    assert_eq!(
        err.to_string(),
        format!("{} is not UTF-8 text; nothing was changed", path.display())
    );
    assert_eq!(fs::read(&path).unwrap(), b"{\"a\": \"\xff\"}");

    let deep = format!("{{\"a\": {}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    fs::write(&path, &deep).unwrap();
    let err = connect::write_file(&p, &places).expect_err("too deep");
    assert!(
        matches!(&err, ConnectError::Invalid { message, .. } if message == "nested too deeply"),
        "{err}"
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), deep);

    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();
    let err = connect::write_file(&p, &places).expect_err("a folder");
    assert_eq!(
        err.to_string(),
        format!(
            "{} is not a regular file; nothing was changed",
            path.display()
        )
    );
    assert_eq!(listing(&path).len(), 1, "nothing created beside it");
}

// ---------------------------------------------------------------- Claude Code (fake `claude`)

/// A fake `claude` that logs its arguments and keeps one `spor` URL in a file.
struct FakeClaude {
    dir: TempDir,
}

impl FakeClaude {
    fn new(script_extra: &str) -> Self {
        let dir = TempDir::new().expect("tempdir");
        let bin = dir.path().join("bin");
        fs::create_dir_all(&bin).unwrap();
        let d = dir.path().display();
        let script = format!(
            r#"#!/bin/sh
echo "$*" >> "{d}/argv.log"
{script_extra}
case "$1 $2" in
  "mcp get")
    if [ -f "{d}/url" ]; then
      printf 'spor:\n  Scope: User config (available in all your projects)\n  Type: http\n  URL: %s\n' "$(cat "{d}/url")"
      exit 0
    fi
    echo "No MCP server found with name: spor" >&2; exit 1 ;;
  "mcp add") for last; do :; done; printf %s "$last" > "{d}/url" ;;
  "mcp remove") rm -f "{d}/url" ;;
esac
"#
        );
        let path = bin.join("claude");
        fs::write(&path, script).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        Self { dir }
    }

    fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    fn set_url(&self, url: &str) {
        fs::write(self.dir.path().join("url"), url).unwrap();
    }

    fn url(&self) -> Option<String> {
        fs::read_to_string(self.dir.path().join("url")).ok()
    }

    fn calls(&self) -> Vec<String> {
        fs::read_to_string(self.dir.path().join("argv.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn cli(&self) -> ClaudeCli {
        ClaudeCli::find(Some(self.bin().as_os_str())).expect("fake claude found on PATH")
    }
}

const ADD: &str = "mcp add --transport http --scope user spor http://127.0.0.1:7767/mcp";

#[tokio::test]
async fn claude_code_write_adds_once_and_replaces_another_url() {
    let fake = FakeClaude::new("");
    let dir = TempDir::new().unwrap();
    let (places, p, cli) = (places(dir.path()), plan(Host::ClaudeCode, URL), fake.cli());

    let o = connect::write(&p, &places, Some(&cli)).await.expect("add");
    assert_eq!(o.change, Change::Added);
    assert_eq!(
        o.to_string(),
        format!("added spor to Claude Code (ran: claude {ADD})")
    );
    assert_eq!(fake.calls(), ["mcp get spor", ADD]);
    assert_eq!(fake.url().as_deref(), Some(URL));

    let o = connect::write(&p, &places, Some(&cli))
        .await
        .expect("again");
    assert_eq!(o.change, Change::AlreadyConnected);
    assert_eq!(
        fake.calls().len(),
        3,
        "only `mcp get` the second time: {:?}",
        fake.calls()
    );
    assert_eq!(
        connect::state(&p, &places, Some(&cli))
            .await
            .expect("state"),
        State::Connected
    );

    fake.set_url("http://127.0.0.1:7000/mcp");
    assert_eq!(
        connect::state(&p, &places, Some(&cli))
            .await
            .expect("state"),
        State::Outdated
    );
    let o = connect::write(&p, &places, Some(&cli))
        .await
        .expect("update");
    assert_eq!(o.change, Change::Updated);
    assert_eq!(
        &fake.calls()[5..],
        ["mcp get spor", "mcp remove --scope user spor", ADD]
    );
    assert_eq!(fake.url().as_deref(), Some(URL));
}

#[tokio::test]
async fn claude_code_remove_runs_claude_mcp_remove_only_when_present() {
    let fake = FakeClaude::new("");
    let dir = TempDir::new().unwrap();
    let (places, p, cli) = (places(dir.path()), plan(Host::ClaudeCode, URL), fake.cli());
    let o = connect::remove(&p, &places, Some(&cli))
        .await
        .expect("nothing");
    assert_eq!(o.change, Change::NothingToRemove);
    assert_eq!(fake.calls(), ["mcp get spor"]);
    fake.set_url(URL);
    let o = connect::remove(&p, &places, Some(&cli))
        .await
        .expect("remove");
    assert_eq!(o.change, Change::Removed);
    assert_eq!(
        &fake.calls()[1..],
        ["mcp get spor", "mcp remove --scope user spor"]
    );
    assert_eq!(fake.url(), None);
}

#[tokio::test]
async fn claude_code_failures_say_what_failed_and_missing_claude_prints_the_command() {
    let dir = TempDir::new().unwrap();
    let places = places(dir.path());
    let p = plan(Host::ClaudeCode, URL);
    let err = connect::write(&p, &places, None)
        .await
        .expect_err("no claude");
    assert_eq!(
        err.to_string(),
        format!("Claude Code's `claude` command was not found on PATH. Run this yourself:\n  claude {ADD}")
    );
    assert_eq!(err.code(), "claude_not_found");

    let fake =
        FakeClaude::new(r#"if [ "$2" = add ]; then echo "config is locked" >&2; exit 3; fi"#);
    let err = connect::write(&p, &places, Some(&fake.cli()))
        .await
        .expect_err("add fails");
    assert_eq!(
        err.to_string(),
        format!("`claude {ADD}` failed (exit status: 3): config is locked")
    );

    let slow = FakeClaude::new("exec sleep 30");
    let mut cli = slow.cli();
    cli.timeout = Duration::from_millis(300);
    let started = tokio::time::Instant::now();
    let err = connect::write(&p, &places, Some(&cli))
        .await
        .expect_err("timeout");
    assert!(matches!(err, ConnectError::ClaudeTimeout { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped, not waited for"
    );
}

// ---------------------------------------------------------------- the binary

const BIN: &str = env!("CARGO_BIN_EXE_spor-companiond");

/// `spor-companiond <args>` with HOME and the config folders in `home`,
/// `PATH` as given, and no `SPOR_COMPANION_*` from the outside.
fn companiond(home: &Path, path: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("APPDATA", home.join("AppData/Roaming"))
        .env("PATH", path)
        .env("RUST_LOG", "off");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run spor-companiond")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const SYS_PATH: &str = "/usr/bin:/bin";

#[test]
fn cli_print_is_the_default_and_changes_nothing() {
    let home = TempDir::new().unwrap();
    let o = companiond(home.path(), SYS_PATH, &["connect", "claude-desktop"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let file = home
        .path()
        .join(".config/Claude/claude_desktop_config.json");
    assert_eq!(
        stdout(&o),
        format!(
            "Claude Desktop: would add to {}, under \"mcpServers\":\n  \"spor\": {{\n    \"command\": \"{BIN}\",\n    \"args\": [\"bridge\", \"{URL}\"]\n  }}\n\
             Nothing was changed. To apply it: spor-companiond connect claude-desktop --write\n",
            file.display()
        )
    );
    assert!(
        !file.exists() && !file.parent().unwrap().exists(),
        "nothing created"
    );
    let o = companiond(
        home.path(),
        SYS_PATH,
        &["connect", "claude-code", "--print"],
        &[],
    );
    assert_eq!(stdout(&o), format!("claude {ADD}\n"));
}

#[test]
fn cli_write_then_remove_claude_desktop_runs_this_binary_as_the_bridge() {
    let home = TempDir::new().unwrap();
    let file = home
        .path()
        .join(".config/Claude/claude_desktop_config.json");
    let o = companiond(
        home.path(),
        SYS_PATH,
        &["connect", "claude-desktop", "--write"],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("added spor to {}\n", file.display()));
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"mcpServers": {"spor": {"command": BIN, "args": ["bridge", URL]}}})
    );

    let o = companiond(
        home.path(),
        SYS_PATH,
        &["connect", "claude-desktop", "--write"],
        &[],
    );
    assert_eq!(
        stdout(&o),
        format!(
            "already connected: {} has spor as it should\n",
            file.display()
        )
    );

    let o = companiond(
        home.path(),
        SYS_PATH,
        &["connect", "claude-desktop", "--remove"],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let backup = backup_path(&file);
    assert_eq!(
        stdout(&o),
        format!(
            "removed spor from {} (backup at {})\n",
            file.display(),
            backup.display()
        )
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), "{}\n");
    let o = companiond(
        home.path(),
        SYS_PATH,
        &["connect", "claude-desktop", "--remove"],
        &[],
    );
    assert_eq!(
        stdout(&o),
        format!("nothing to remove: {} has no spor entry\n", file.display())
    );
}

#[test]
fn cli_bridge_arguments_carry_a_file_store_and_data_dir_and_the_url_follows_the_port() {
    let home = TempDir::new().unwrap();
    let data = home.path().join("data");
    let data_s = data.display().to_string();
    let o = companiond(
        home.path(),
        SYS_PATH,
        &[
            "--secret-store",
            "file",
            "--data-dir",
            &data_s,
            "connect",
            "claude-desktop",
            "--write",
        ],
        &[("SPOR_COMPANION_PORT", "45001")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let file = home
        .path()
        .join(".config/Claude/claude_desktop_config.json");
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(
        v["mcpServers"]["spor"]["args"],
        serde_json::json!([
            "bridge",
            "http://127.0.0.1:45001/mcp",
            "--secret-store",
            "file",
            "--data-dir",
            data_s
        ])
    );

    let o = companiond(
        home.path(),
        SYS_PATH,
        &[
            "connect",
            "claude-desktop",
            "--write",
            "--via",
            "mcp-remote",
            "--url",
            "http://127.0.0.1:9/mcp",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(
        v["mcpServers"]["spor"],
        serde_json::json!({"command": "npx", "args": ["-y", "mcp-remote", "http://127.0.0.1:9/mcp"]})
    );
}

#[test]
fn cli_vscode_and_cursor_go_to_their_user_files() {
    let home = TempDir::new().unwrap();
    for (host, rel, expected) in [
        (
            "vscode",
            ".config/Code/User/mcp.json",
            serde_json::json!({"servers": {"spor": {"type": "http", "url": URL}}}),
        ),
        (
            "cursor",
            ".cursor/mcp.json",
            serde_json::json!({"mcpServers": {"spor": {"url": URL}}}),
        ),
    ] {
        let o = companiond(home.path(), SYS_PATH, &["connect", host, "--write"], &[]);
        assert!(o.status.success(), "{host}: {}", stderr(&o));
        let file = home.path().join(rel);
        assert_eq!(stdout(&o), format!("added spor to {}\n", file.display()));
        let v: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
        assert_eq!(v, expected, "{host}");
    }
    let o = companiond(
        home.path(),
        SYS_PATH,
        &["connect", "cursor", "--via", "mcp-remote"],
        &[],
    );
    assert!(!o.status.success());
    assert_eq!(
        stderr(&o),
        "error: --via applies only to claude-desktop; cursor connects to the URL directly\n"
    );
}

#[test]
fn cli_malformed_config_fails_with_its_position_and_is_left_alone() {
    let home = TempDir::new().unwrap();
    let file = home.path().join(".cursor/mcp.json");
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    fs::write(
        &file,
        "{\"mcpServers\": {\n  \"a\": {\"url\": \"x\"}\n  \"b\": {}\n}}\n",
    )
    .unwrap();
    for action in ["--write", "--remove", "--print"] {
        let o = companiond(home.path(), SYS_PATH, &["connect", "cursor", action], &[]);
        assert_eq!(o.status.code(), Some(1), "{action}");
        assert_eq!(
            stderr(&o),
            format!(
                "error: {}: line 3, column 3: unexpected '\"', expected ',' or '}}' after an object member. \
                 Nothing was changed; fix the file or move it aside, then try again\n",
                file.display()
            ),
            "{action}"
        );
        assert_eq!(stdout(&o), "");
    }
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        "{\"mcpServers\": {\n  \"a\": {\"url\": \"x\"}\n  \"b\": {}\n}}\n"
    );
    assert_eq!(listing(&file), ["mcp.json"]);
}

#[cfg(unix)]
#[test]
fn cli_claude_code_uses_the_claude_on_path_and_explains_when_there_is_none() {
    let fake = FakeClaude::new("");
    let home = TempDir::new().unwrap();
    let path = format!("{}:{SYS_PATH}", fake.bin().display());
    let o = companiond(
        home.path(),
        &path,
        &["connect", "claude-code", "--write"],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!("added spor to Claude Code (ran: claude {ADD})\n")
    );
    let o = companiond(
        home.path(),
        &path,
        &["connect", "claude-code", "--write"],
        &[],
    );
    assert_eq!(
        stdout(&o),
        "already connected: Claude Code has spor as it should\n"
    );
    let o = companiond(
        home.path(),
        &path,
        &["connect", "claude-code", "--remove"],
        &[],
    );
    assert_eq!(
        stdout(&o),
        "removed spor from Claude Code (ran: claude mcp remove --scope user spor)\n"
    );
    assert_eq!(
        fake.calls(),
        [
            "mcp get spor",
            ADD,
            "mcp get spor",
            "mcp get spor",
            "mcp remove --scope user spor"
        ]
    );

    let o = companiond(
        home.path(),
        SYS_PATH,
        &["connect", "claude-code", "--write"],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!("error: Claude Code's `claude` command was not found on PATH. Run this yourself:\n  claude {ADD}\n")
    );
    let o = companiond(
        home.path(),
        &path,
        &["connect", "claude-code", "--config", "/x.json"],
        &[],
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "--config is refused for Claude Code"
    );
}

// ---------------------------------------------------------------- the app's buttons

mod app {
    use super::*;
    use spor_companion::desktop::{self, ConnectAction, Connector, ServerState, ServerStatus};

    fn running(port: u16) -> ServerStatus {
        ServerStatus {
            state: ServerState::Running,
            port,
            mcp_url: Some(format!("http://127.0.0.1:{port}/mcp")),
            message: None,
        }
    }

    fn connector(dir: &Path, claude: Option<ClaudeCli>) -> Connector {
        Connector {
            places: Some(places(dir)),
            claude,
            bridge: "/opt/spor/bin/spor-companion".into(),
            downloads: Some(dir.join("home").join("Downloads")),
        }
    }

    #[tokio::test]
    async fn the_window_lists_every_host_with_its_file_or_command_and_state() {
        let dir = TempDir::new().unwrap();
        let c = connector(dir.path(), None);
        let cursor = config_path(Host::Cursor, dir.path());
        fs::create_dir_all(cursor.parent().unwrap()).unwrap();
        fs::write(&cursor, "{\"mcpServers\": [}").unwrap();
        let views = desktop::connect_hosts(&c, &running(7767)).await;
        let json = serde_json::to_value(&views).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"host": "claude-desktop", "name": "Claude Desktop", "state": "not-connected",
                 "file": config_path(Host::ClaudeDesktop, dir.path()), "command": null, "message": null},
                {"host": "claude-code", "name": "Claude Code", "state": "unavailable", "file": null,
                 "command": format!("claude {ADD}"),
                 "message": "The claude command was not found. Run this in a terminal instead:"},
                {"host": "vscode", "name": "VS Code", "state": "not-connected",
                 "file": config_path(Host::VsCode, dir.path()), "command": null, "message": null},
                {"host": "cursor", "name": "Cursor", "state": "error", "file": cursor, "command": null,
                 "message": format!("{}: line 1, column 17: unexpected '}}', expected a value. Nothing was changed; fix the file or move it aside, then try again.", cursor.display())},
            ])
        );
    }

    #[tokio::test]
    async fn add_and_remove_buttons_write_the_app_as_the_bridge_and_report_what_happened() {
        let dir = TempDir::new().unwrap();
        let c = connector(dir.path(), None);
        let file = config_path(Host::ClaudeDesktop, dir.path());
        let done = desktop::connect_host(
            &c,
            &running(45002),
            Host::ClaudeDesktop,
            ConnectAction::Write,
        )
        .await
        .expect("add");
        assert_eq!(done.message, format!("Added spor to {}.", file.display()));
        assert_eq!(done.view.state, "connected");
        let v: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
        assert_eq!(
            v["mcpServers"]["spor"],
            serde_json::json!({"command": "/opt/spor/bin/spor-companion", "args": ["bridge", "http://127.0.0.1:45002/mcp"]})
        );
        // After a port change the entry is shown as outdated.
        let views = desktop::connect_hosts(&c, &running(45003)).await;
        assert_eq!(views[0].state, "outdated");

        let done = desktop::connect_host(
            &c,
            &running(45002),
            Host::ClaudeDesktop,
            ConnectAction::Remove,
        )
        .await
        .expect("remove");
        assert_eq!(
            done.message,
            format!(
                "Removed spor from {} (backup at {}).",
                file.display(),
                backup_path(&file).display()
            )
        );
        assert_eq!(done.view.state, "not-connected");
        assert_eq!(fs::read_to_string(&file).unwrap(), "{}\n");

        let err =
            desktop::connect_host(&c, &running(45002), Host::ClaudeCode, ConnectAction::Write)
                .await
                .expect_err("no claude");
        assert_eq!(err.code, "claude_not_found");
        assert!(
            err.message.contains(
                "claude mcp add --transport http --scope user spor http://127.0.0.1:45002/mcp"
            ),
            "{}",
            err.message
        );
    }
}

// ---------------------------------------------------------------- the Claude Desktop extension

mod extension {
    use super::*;
    use spor_companion::connect::mcpb::{self, Platform};
    use spor_companion::desktop::{self, Connector, ServerState, ServerStatus};

    /// The entries of a zip, by name, in order.
    fn entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
        (0..zip.len())
            .map(|i| {
                let mut f = zip.by_index(i).expect("an entry");
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut f, &mut data).expect("readable");
                (f.name().expect("a UTF-8 name").to_string(), data)
            })
            .collect()
    }

    fn manifest(bytes: &[u8]) -> serde_json::Value {
        let all = entries(bytes);
        let (_, m) = all
            .iter()
            .find(|(n, _)| n == "manifest.json")
            .expect("a manifest");
        serde_json::from_slice(m).expect("JSON")
    }

    fn file_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn the_extension_is_a_manifest_and_an_icon_running_the_bridge_the_same_bytes_every_time() {
        let mut p = plan(Host::ClaudeDesktop, URL);
        p.bridge.args = vec!["--secret-store".into(), "file".into()];
        let ext = p.extension().unwrap();
        let bytes = ext.to_bytes().unwrap();
        assert_eq!(bytes, ext.to_bytes().unwrap(), "deterministic");
        let all = entries(&bytes);
        let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["manifest.json", "icon.png"]);
        assert!(
            all[1].1.starts_with(b"\x89PNG\r\n\x1a\n"),
            "icon.png is a PNG"
        );

        let m = manifest(&bytes);
        assert_eq!(m["manifest_version"], "0.2");
        assert_eq!(m["name"], "spor-companion");
        assert_eq!(m["display_name"], "Spor Companion");
        assert_eq!(m["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(m["icon"], "icon.png");
        assert_eq!(m["author"]["name"], "Spor");
        assert_eq!(
            m["compatibility"],
            serde_json::json!({"claude_desktop": ">=1.0.0", "platforms": ["darwin", "win32", "linux"]})
        );
        let server = &m["server"];
        assert_eq!(server["type"], "binary");
        assert_eq!(server["entry_point"], PROGRAM);
        let cfg = &server["mcp_config"];
        assert_eq!(cfg["command"], PROGRAM);
        assert_eq!(
            cfg["args"],
            serde_json::json!(["bridge", URL, "--secret-store", "file"])
        );
        // The other platforms run the app where it installs, without this
        // machine's arguments; this platform runs the given program.
        let here = Platform::current();
        for platform in Platform::ALL {
            let o = &cfg["platform_overrides"][platform.id()];
            if Some(platform) == here {
                assert!(o.is_null(), "no override for this platform: {o}");
            } else {
                assert_eq!(
                    *o,
                    serde_json::json!({"command": platform.installed_bridge(), "args": ["bridge", URL]})
                );
            }
        }
        assert_eq!(
            Platform::Darwin.installed_bridge(),
            "/Applications/Spor Companion.app/Contents/MacOS/spor-companion"
        );
        assert_eq!(
            Platform::Win32.installed_bridge(),
            "${HOME}\\AppData\\Local\\Spor Companion\\spor-companion.exe"
        );
        assert_eq!(
            Platform::Linux.installed_bridge(),
            "/usr/bin/spor-companiond"
        );
    }

    #[test]
    fn only_claude_desktop_through_the_bridge_has_an_extension() {
        for host in [Host::ClaudeCode, Host::VsCode, Host::Cursor] {
            let e = plan(host, URL).extension().unwrap_err();
            assert!(matches!(e, ConnectError::NoExtension), "{host:?}: {e}");
            assert_eq!(e.code(), "unsupported");
        }
        let mut p = plan(Host::ClaudeDesktop, URL);
        p.via = Via::McpRemote;
        assert!(matches!(
            p.extension().unwrap_err(),
            ConnectError::NoExtension
        ));
    }

    #[test]
    fn cli_mcpb_writes_the_extension_with_this_binary_and_the_configured_port_and_touches_no_config(
    ) {
        let home = TempDir::new().unwrap();
        let file = home.path().join("spor.mcpb");
        let o = companiond(
            home.path(),
            SYS_PATH,
            &[
                "connect",
                "claude-desktop",
                "--mcpb",
                file.to_str().unwrap(),
            ],
            &[("SPOR_COMPANION_PORT", "7801")],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stdout(&o).starts_with(&format!(
                "wrote the Claude Desktop extension to {}",
                file.display()
            )),
            "{}",
            stdout(&o)
        );
        let m = manifest(&fs::read(&file).unwrap());
        assert_eq!(m["server"]["mcp_config"]["command"], BIN);
        assert_eq!(
            m["server"]["mcp_config"]["args"],
            serde_json::json!(["bridge", "http://127.0.0.1:7801/mcp"])
        );
        assert_eq!(
            file_names(home.path()),
            ["spor.mcpb"],
            "no config, no temp file"
        );

        // Again: the file is replaced, with the new port.
        let o = companiond(
            home.path(),
            SYS_PATH,
            &[
                "connect",
                "claude-desktop",
                "--mcpb",
                file.to_str().unwrap(),
            ],
            &[("SPOR_COMPANION_PORT", "7802")],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let m = manifest(&fs::read(&file).unwrap());
        assert_eq!(
            m["server"]["mcp_config"]["args"][1],
            "http://127.0.0.1:7802/mcp"
        );
        assert_eq!(file_names(home.path()), ["spor.mcpb"]);
    }

    #[test]
    fn cli_mcpb_refuses_other_hosts_other_names_folders_and_other_actions_and_writes_nothing() {
        let home = TempDir::new().unwrap();
        let dir = home.path().join("out");
        fs::create_dir_all(dir.join("taken.mcpb")).unwrap();
        let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
        let cases: [(Vec<String>, &str); 6] = [
            (
                vec!["vscode".into(), "--mcpb".into(), path("a.mcpb")],
                "error: --mcpb applies only to claude-desktop: vscode has no extensions; use --write\n",
            ),
            (
                vec!["claude-desktop".into(), "--mcpb".into(), path("a.zip")],
                &format!(
                    "error: {} does not end in .mcpb, the name Claude Desktop opens extensions by; nothing was written\n",
                    path("a.zip")
                ),
            ),
            (
                vec!["claude-desktop".into(), "--mcpb".into(), path("taken.mcpb")],
                &format!(
                    "error: {} is not a regular file; nothing was changed\n",
                    path("taken.mcpb")
                ),
            ),
            (
                vec![
                    "claude-desktop".into(),
                    "--mcpb".into(),
                    path("missing/a.mcpb"),
                ],
                "error: cannot write ",
            ),
            (
                vec![
                    "claude-desktop".into(),
                    "--via".into(),
                    "mcp-remote".into(),
                    "--mcpb".into(),
                    path("a.mcpb"),
                ],
                "error: --mcpb writes an extension that runs the built-in bridge; --via and --config do not apply to it\n",
            ),
            (
                vec![
                    "claude-desktop".into(),
                    "--write".into(),
                    "--mcpb".into(),
                    path("a.mcpb"),
                ],
                "error: the argument '--write' cannot be used with '--mcpb <FILE>'",
            ),
        ];
        for (args, want) in cases {
            let mut all = vec!["connect"];
            all.extend(args.iter().map(String::as_str));
            let o = companiond(home.path(), SYS_PATH, &all, &[]);
            assert!(!o.status.success(), "{args:?} must fail");
            assert!(
                stderr(&o).starts_with(want),
                "{args:?}: {}\nwant: {want}",
                stderr(&o)
            );
            assert_eq!(file_names(&dir), ["taken.mcpb"], "{args:?} wrote nothing");
            assert!(
                !home.path().join(".config/Claude").exists(),
                "{args:?} touched no config"
            );
        }
    }

    #[tokio::test]
    async fn download_extension_saves_in_downloads_runs_the_app_as_the_bridge_and_says_where() {
        let dir = TempDir::new().unwrap();
        let downloads = dir.path().join("home").join("Downloads");
        let c = Connector {
            places: Some(places(dir.path())),
            claude: None,
            bridge: "/opt/spor/bin/spor-companion".into(),
            downloads: Some(downloads.clone()),
        };
        let server = ServerStatus {
            state: ServerState::Running,
            port: 7803,
            mcp_url: Some("http://127.0.0.1:7803/mcp".into()),
            message: None,
        };
        let saved = desktop::save_extension(&c, &server).await.unwrap();
        let file = downloads.join(mcpb::FILE_NAME);
        assert_eq!(saved.file, file.display().to_string());
        assert_eq!(
            saved.message,
            format!(
                "Saved {}. Open it with Claude Desktop to install Spor Companion.",
                file.display()
            )
        );
        let m = manifest(&fs::read(&file).unwrap());
        assert_eq!(
            m["server"]["mcp_config"]["command"],
            "/opt/spor/bin/spor-companion"
        );
        assert_eq!(
            m["server"]["mcp_config"]["args"],
            serde_json::json!(["bridge", "http://127.0.0.1:7803/mcp"])
        );
        assert_eq!(file_names(&downloads), [mcpb::FILE_NAME]);
        assert!(
            !config_path(Host::ClaudeDesktop, dir.path()).exists(),
            "the config file is left alone"
        );

        // No home folder: a clear refusal, nothing written anywhere.
        let none = Connector {
            downloads: None,
            ..c
        };
        let e = desktop::save_extension(&none, &server).await.unwrap_err();
        assert_eq!(e.code, "unsupported");
        assert_eq!(file_names(&downloads), [mcpb::FILE_NAME]);
    }
}
