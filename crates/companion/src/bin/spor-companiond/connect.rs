//! `connect`: shows, adds or removes the `spor` entry of an assistant.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use spor_companion::connect::{self, Bridge, ClaudeCli, Host, Places, Plan, State, Via};
use spor_companion::desktop::configured_port;
use spor_companion::secrets::SecretStoreKind;
use spor_companion::service::mcp_url;

use crate::cli::ConnectArgs;

/// Runs `connect`. `explicit_dir`: the data dir was chosen (flag or
/// environment), so the bridge Claude Desktop starts must be told too.
pub async fn run(
    cmd: ConnectArgs,
    kind: SecretStoreKind,
    data_dir: PathBuf,
    explicit_dir: bool,
) -> Result<()> {
    if cmd.host == Host::ClaudeCode && cmd.config.is_some() {
        bail!("--config does not apply to claude-code: Claude Code keeps its own settings (see `claude mcp`)");
    }
    if cmd.mcpb.is_some() && cmd.host != Host::ClaudeDesktop {
        bail!(
            "--mcpb applies only to claude-desktop: {} has no extensions; use --write",
            cmd.host.id()
        );
    }
    if cmd.mcpb.is_some() && (cmd.via != Via::Bridge || cmd.config.is_some()) {
        bail!("--mcpb writes an extension that runs the built-in bridge; --via and --config do not apply to it");
    }
    if cmd.host != Host::ClaudeDesktop && cmd.via != Via::Bridge {
        bail!(
            "--via applies only to claude-desktop; {} connects to the URL directly",
            cmd.host.id()
        );
    }
    let url = match cmd.url {
        Some(u) => checked_url(&u)?,
        None => default_url(&data_dir)?,
    };
    // Claude Desktop starts the bridge without our environment, so the
    // choices that differ from the defaults travel in its arguments.
    let mut args = Vec::new();
    if kind == SecretStoreKind::File {
        args.extend(["--secret-store".to_string(), "file".to_string()]);
    }
    if explicit_dir {
        let dir = std::path::absolute(&data_dir).unwrap_or(data_dir.clone());
        args.extend(["--data-dir".to_string(), dir.display().to_string()]);
    }
    let program = std::env::current_exe().context("cannot tell where this program is")?;
    let plan = Plan {
        host: cmd.host,
        url,
        via: cmd.via,
        bridge: Bridge { program, args },
        config: cmd.config,
    };
    if let Some(file) = &cmd.mcpb {
        connect::write_extension(&plan, file).await?;
        println!(
            "wrote the Claude Desktop extension to {}: open it with Claude Desktop (or Settings → Extensions) to install it",
            file.display()
        );
        return Ok(());
    }
    let places = match Places::from_env() {
        Some(p) => p,
        None if plan.config.is_some() || plan.host == Host::ClaudeCode => Places {
            home: PathBuf::new(),
            config_dir: PathBuf::new(),
        },
        None => return Err(connect::ConnectError::NoHome.into()),
    };
    let claude = ClaudeCli::find(std::env::var_os("PATH").as_deref());
    if cmd.write {
        let outcome = connect::write(&plan, &places, claude.as_ref()).await?;
        println!("{outcome}");
    } else if cmd.remove {
        let outcome = connect::remove(&plan, &places, claude.as_ref()).await?;
        println!("{outcome}");
    } else {
        print_plan(&plan, &places).await?;
    }
    Ok(())
}

/// `--print`: what would change, and where; changes nothing.
async fn print_plan(plan: &Plan, places: &Places) -> Result<()> {
    let host = plan.host;
    let (Some(file), Some(snippet), Some(container)) =
        (plan.config_file(places), plan.snippet()?, plan.container())
    else {
        // Claude Code: the command itself, so it can be piped or pasted.
        println!("{}", plan.claude_command());
        return Ok(());
    };
    let file = file.display();
    let state = connect::state(plan, places, None).await?;
    match state {
        State::Connected => println!("{}: {file} already has this entry:", host.name()),
        State::NotConnected => println!(
            "{}: would add to {file}, under \"{container}\":",
            host.name()
        ),
        State::Outdated => println!(
            "{}: would replace the \"{}\" entry in {file} with:",
            host.name(),
            connect::ENTRY_NAME
        ),
    }
    for line in snippet.lines() {
        println!("  {line}");
    }
    if state != State::Connected {
        println!(
            "Nothing was changed. To apply it: spor-companiond connect {} --write",
            host.id()
        );
    }
    Ok(())
}

fn checked_url(u: &str) -> Result<String> {
    let parsed = url::Url::parse(u).with_context(|| format!("--url {u:?} is not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        bail!("--url must be an http:// or https:// URL, not {u:?}");
    }
    Ok(u.to_string())
}

/// `http://127.0.0.1:<port>/mcp` with the port the companion is set to use:
/// `SPOR_COMPANION_LISTEN` (the daemon), else the app's saved port or
/// `SPOR_COMPANION_PORT`, else the default.
fn default_url(data_dir: &Path) -> Result<String> {
    if let Some(listen) = std::env::var("SPOR_COMPANION_LISTEN")
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        let addr: SocketAddr = listen
            .trim()
            .parse()
            .with_context(|| format!("SPOR_COMPANION_LISTEN is not an address: {listen:?}"))?;
        return Ok(mcp_url(addr));
    }
    let env = std::env::var("SPOR_COMPANION_PORT").ok();
    let port = configured_port(data_dir, env.as_deref())?;
    Ok(mcp_url(SocketAddr::from((Ipv4Addr::LOCALHOST, port))))
}
