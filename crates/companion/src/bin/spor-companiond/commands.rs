//! What each subcommand does: open the state, call the core, print.

use std::future::Future;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use spor_companion::access::Access;
use spor_companion::accounts;
use spor_companion::clock::rfc3339;
use spor_companion::config::{default_data_dir, Config, ConsentMode};
use spor_companion::consent::requester::Requester;
use spor_companion::control::{self, Command as Ctl, Reply};
use spor_companion::listener::BindError;
use spor_companion::secrets::SecretStoreKind;
use spor_companion::sensitive::Sensitive;
use spor_companion::service::{Companion, StartError};
use spor_companion::state::AppState;
use spor_companion::store::AccountKind;
use spor_companion::upstream::{WAKE_NOTICE, WAKE_NOTICE_AFTER};
use spor_wire::oauth::register::escape_name;

use crate::cli::{AccountCommand, Args, Command, ConsentCommand, GrantsCommand, ServeArgs};

/// Runs the parsed command.
pub async fn run(args: Args) -> Result<()> {
    let data_dir = match args.data_dir.clone() {
        Some(d) => d,
        None => default_data_dir().context("cannot determine a data directory; pass --data-dir")?,
    };
    let kind = args.secret_store;
    match args.command {
        Command::Serve(serve) => run_serve(kind, data_dir, serve).await,
        Command::Account(cmd) => run_account(kind, data_dir, cmd).await,
        Command::Consent(cmd) => run_consent(data_dir, cmd).await,
        Command::Grants(cmd) => run_grants(data_dir, cmd).await,
        Command::Connect(cmd) => {
            let explicit_dir = args.data_dir.is_some();
            crate::connect::run(cmd, kind, data_dir, explicit_dir).await
        }
        Command::Bridge(bridge) => Ok(spor_companion::bridge::run(bridge, data_dir, kind).await?),
    }
}

fn open(
    kind: SecretStoreKind,
    data_dir: PathBuf,
    default_server: Option<String>,
    consent_mode: ConsentMode,
) -> Result<AppState> {
    let config = Config {
        data_dir,
        default_server,
        consent_mode,
    };
    Ok(AppState::open(config, kind)?)
}

async fn run_serve(kind: SecretStoreKind, data_dir: PathBuf, serve: ServeArgs) -> Result<()> {
    // Checked before the data dir is opened, so a bad address creates nothing.
    if !serve.listen.ip().is_loopback() {
        return Err(BindError::NotLoopback(serve.listen).into());
    }
    let default_server = match serve.server.as_deref() {
        Some(s) => Some(spor_companion::upstream::normalize_server_url(s)?),
        None => None,
    };
    let state = open(kind, data_dir, default_server, serve.consent)?;
    // Before the ready line: whoever reads it may stop us at once.
    let stop = spor_companion::shutdown::signal();
    let service = match Companion::start(state, serve.listen).await {
        Ok(s) => s,
        Err(StartError::Bind(e @ BindError::InUse { .. })) => {
            bail!("{e}; choose another port with --listen 127.0.0.1:PORT")
        }
        Err(e) => return Err(e.into()),
    };
    let mut out = std::io::stdout();
    writeln!(out, "listening on {}", service.mcp_url())?;
    out.flush()?;
    stop.await;
    tracing::info!("shutting down");
    service.stop().await.context("server task failed")
}

fn read_token_stdin() -> Result<Sensitive<String>> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("Paste the personal access token, then press Enter and Ctrl-D:");
    }
    let mut buf = String::new();
    stdin
        .lock()
        .take(64 * 1024)
        .read_to_string(&mut buf)
        .context("cannot read the token from standard input")?;
    let token = buf.trim().to_string();
    if token.is_empty() {
        bail!("no token on standard input");
    }
    Ok(Sensitive::new(token))
}

/// Waits for a token check, saying on standard error once it has taken
/// `WAKE_NOTICE_AFTER` that the graph is waking up, so a long wait does not
/// look like a hang.
async fn with_wake_notice<T>(check: impl Future<Output = T>) -> T {
    tokio::pin!(check);
    tokio::select! {
        done = &mut check => return done,
        () = tokio::time::sleep(WAKE_NOTICE_AFTER) => {}
    }
    eprintln!("{WAKE_NOTICE} The first request after a quiet spell can take up to a minute.");
    check.await
}

/// Who vouches for an assistant's name, as lists say it.
fn name_source(verified_by: Option<&str>) -> String {
    match verified_by {
        Some(host) => format!("verified by {}", isolated(host)),
        None => "name as stated by the app".into(),
    }
}

fn who(a: &spor_companion::store::Account) -> String {
    a.who().unwrap_or_else(|| "(unbound token)".into())
}

async fn run_account(kind: SecretStoreKind, data_dir: PathBuf, cmd: AccountCommand) -> Result<()> {
    // No page is served here, so the consent mode plays no part.
    let state = open(kind, data_dir, None, ConsentMode::Browser)?;
    match cmd {
        AccountCommand::Add {
            server,
            mcp_url,
            generic,
            label,
            token_stdin: _,
        } => {
            let token = read_token_stdin()?;
            let added = match (generic, server, mcp_url, label) {
                (true, _, Some(url), Some(label)) => {
                    accounts::add_generic_account(&state, &url, &label, token).await?
                }
                (false, server, url, _) => {
                    let server = match server {
                        Some(s) => s,
                        None => accounts::new_token_server(&state).await,
                    };
                    // Only the server check can be a waking graph; a slow
                    // keychain write afterwards has its own message.
                    with_wake_notice(accounts::validate_spor_account(
                        &state,
                        &server,
                        url.as_deref(),
                        token,
                    ))
                    .await?
                    .store(&state)
                    .await?
                }
                // clap requires --mcp-url and --label with --generic.
                _ => bail!("give --generic --mcp-url URL --label NAME"),
            };
            for w in &added.warnings {
                eprintln!("warning: {w}");
            }
            let a = &added.account;
            if added.replaced {
                println!(
                    "Replaced the token of account {} ({} in org {}); {} connected assistant(s) were disconnected.",
                    a.id,
                    who(a),
                    a.org,
                    added.revoked_grants.len()
                );
            } else if a.kind == AccountKind::Generic {
                println!("Added account {}: {} ({}).", a.id, who(a), a.mcp_url);
            } else {
                println!(
                    "Added account {}: {} in org {} on {} (MCP: {}).",
                    a.id,
                    who(a),
                    a.org,
                    a.server,
                    a.mcp_url
                );
            }
            println!("The token is kept in the {}.", state.secrets.describe());
        }
        AccountCommand::List { json } => {
            let accounts = state.store.accounts().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&accounts)?);
            } else if accounts.is_empty() {
                println!("No accounts yet. Add one with: spor-companiond account add --token-stdin (add --server URL for your organization's own Spor server)");
            } else {
                println!(
                    "{:<18} {:<32} {:<14} {:<9} SERVER",
                    "ID", "WHO", "ORG", "TOKEN"
                );
                for a in &accounts {
                    let status = serde_json::to_value(a.status)?
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    println!(
                        "{:<18} {:<32} {:<14} {:<9} {}",
                        a.id,
                        who(a),
                        a.org,
                        status,
                        a.server
                    );
                }
            }
        }
        AccountCommand::Remove {
            id,
            revoke_upstream,
        } => {
            let removed = accounts::remove_account(&state, &id, revoke_upstream).await?;
            println!(
                "Removed account {id}; {} connected assistant(s) were disconnected.",
                removed.revoked_grants.len()
            );
            if removed.revoked_upstream {
                println!("The token was also revoked on the server.");
            }
        }
    }
    Ok(())
}

fn expect_ok(reply: Reply) -> Result<serde_json::Value> {
    if reply.ok {
        Ok(reply.data)
    } else {
        bail!(
            "{}",
            reply
                .message
                .unwrap_or_else(|| "the daemon refused the command".into())
        )
    }
}

/// A client's self-chosen name as a line may show it: anything that could
/// hide or reorder text written out (`<U+202E>`), and the whole wrapped in
/// a first-strong isolate (U+2068 … U+2069), so a right-to-left name, or one
/// stored before registration refused such characters, cannot reorder the
/// rest of the line.
fn isolated(name: &str) -> String {
    format!("\u{2068}{}\u{2069}", escape_name(name))
}

/// Sends a listing command; prints JSON (and returns `None`) when asked to,
/// or `empty` when there is nothing; otherwise returns the rows to print.
async fn fetch_rows(
    data_dir: &Path,
    cmd: &Ctl,
    json: bool,
    empty: &str,
) -> Result<Option<Vec<serde_json::Value>>> {
    let data = expect_ok(control::send(data_dir, cmd).await?)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&data)?);
        return Ok(None);
    }
    let items = data.as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        println!("{empty}");
        return Ok(None);
    }
    Ok(Some(items))
}

async fn run_consent(data_dir: PathBuf, cmd: ConsentCommand) -> Result<()> {
    match cmd {
        ConsentCommand::List { json } => {
            let rows = fetch_rows(
                &data_dir,
                &Ctl::ConsentList,
                json,
                "No authorization requests are waiting.",
            )
            .await?;
            for r in rows.unwrap_or_default() {
                println!(
                    "{}  {} ({}) → {}  since {}",
                    r["id"].as_str().unwrap_or_default(),
                    isolated(r["client_name"].as_str().unwrap_or_default()),
                    name_source(r["verified_by"].as_str()),
                    r["redirect_host"].as_str().unwrap_or_default(),
                    rfc3339(r["created_at"].as_i64().unwrap_or_default())
                );
                // An older daemon sends no requester: say nothing rather than guess.
                if let Ok(who) = serde_json::from_value::<Requester>(r["requester"].clone()) {
                    // Executable paths are any bytes a program chose, too.
                    println!("    program: {}", isolated(&who.registered_by_text()));
                    if let Some(listener) = who.listener_text() {
                        println!("    redirect port: {}", isolated(&listener));
                    }
                    for w in &who.warnings {
                        println!("    warning: {}", w.message);
                    }
                }
            }
        }
        ConsentCommand::Approve {
            id,
            account,
            access,
        } => {
            // Checked here too, so a typo is named before the daemon is asked.
            if let Some(a) = access.as_deref() {
                Access::parse(a)?;
            }
            expect_ok(
                control::send(
                    &data_dir,
                    &Ctl::ConsentApprove {
                        id: id.clone(),
                        account_id: account,
                        access,
                    },
                )
                .await?,
            )?;
            println!("Approved {id}; the browser tab continues by itself.");
        }
        ConsentCommand::Deny { id } => {
            expect_ok(control::send(&data_dir, &Ctl::ConsentDeny { id: id.clone() }).await?)?;
            println!("Denied {id}.");
        }
    }
    Ok(())
}

async fn run_grants(data_dir: PathBuf, cmd: GrantsCommand) -> Result<()> {
    match cmd {
        GrantsCommand::List { json, all } => {
            let cmd = Ctl::GrantsList {
                include_revoked: all,
            };
            let Some(items) =
                fetch_rows(&data_dir, &cmd, json, "No assistants are connected.").await?
            else {
                return Ok(());
            };
            println!(
                "{:<20} {:<28} {:<14} {:<10} {:<21} LAST USED",
                "ID", "ASSISTANT", "ORG", "ACCESS", "CONNECTED"
            );
            for g in items {
                let last = g["last_used_at"]
                    .as_i64()
                    .map(rfc3339)
                    .unwrap_or_else(|| "never".into());
                let name = isolated(g["client_name"].as_str().unwrap_or_default());
                let name = match g["verified_by"].as_str() {
                    Some(_) => format!("{name} ({})", name_source(g["verified_by"].as_str())),
                    None => name,
                };
                let name = match g["revoked_at"].as_i64() {
                    Some(_) => format!("{name} (disconnected)"),
                    None => name,
                };
                // Tool names come from a server: isolated like names.
                let access = match g["access"]["kind"].as_str() {
                    Some("read_only") => "read-only".to_string(),
                    Some("tools") => {
                        let names: Vec<String> = g["access"]["tools"]
                            .as_array()
                            .map(|t| t.iter().filter_map(|n| n.as_str()).map(isolated).collect())
                            .unwrap_or_default();
                        format!("tools:{}", names.join(","))
                    }
                    _ => "full".to_string(),
                };
                // 30: the two isolate marks are counted but take no room.
                println!(
                    "{:<20} {:<30} {:<14} {:<10} {:<21} {}",
                    g["id"].as_str().unwrap_or_default(),
                    name,
                    g["org"].as_str().unwrap_or("-"),
                    access,
                    rfc3339(g["created_at"].as_i64().unwrap_or_default()),
                    last
                );
            }
        }
        GrantsCommand::Activity { id, json, limit } => {
            let cmd = Ctl::GrantsActivity {
                id: id.clone(),
                limit,
            };
            let empty = format!("No calls recorded for {id} yet.");
            let Some(items) = fetch_rows(&data_dir, &cmd, json, &empty).await? else {
                return Ok(());
            };
            println!(
                "{:<21} {:<26} {:<20} {:<12} MS",
                "WHEN", "METHOD", "TOOL", "OUTCOME"
            );
            for c in items {
                println!(
                    "{:<21} {:<26} {:<20} {:<12} {}",
                    rfc3339(c["at"].as_i64().unwrap_or_default()),
                    c["method"].as_str().unwrap_or_default(),
                    c["tool"].as_str().unwrap_or("-"),
                    c["outcome"].as_str().unwrap_or_default(),
                    c["duration_ms"].as_u64().unwrap_or_default()
                );
            }
        }
        GrantsCommand::Access { id, access } => {
            let parsed = Access::parse(&access)?;
            expect_ok(
                control::send(
                    &data_dir,
                    &Ctl::GrantsAccess {
                        id: id.clone(),
                        access,
                    },
                )
                .await?,
            )?;
            println!(
                "{id} now has {} access, from its next request on.",
                parsed.describe()
            );
        }
        GrantsCommand::Revoke { id } => {
            expect_ok(control::send(&data_dir, &Ctl::GrantsRevoke { id: id.clone() }).await?)?;
            println!("Disconnected {id}: its tokens no longer work.");
        }
    }
    Ok(())
}
