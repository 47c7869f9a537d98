//! Command-line syntax.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand};
use spor_companion::config::{ConsentMode, DEFAULT_PORT};
use spor_companion::secrets::SecretStoreKind;

/// Spor Companion: lets AI assistants use your Spor account safely.
#[derive(Debug, Parser)]
#[command(name = "spor-companiond", version, about)]
pub struct Args {
    /// Where the database (and the file secret store) live [default: the OS data dir].
    #[arg(
        long,
        global = true,
        env = "SPOR_COMPANION_DATA_DIR",
        value_name = "DIR"
    )]
    pub data_dir: Option<PathBuf>,

    /// Where personal access tokens are kept.
    #[arg(
        long,
        global = true,
        env = "SPOR_COMPANION_SECRET_STORE",
        value_enum,
        default_value = "keychain"
    )]
    pub secret_store: SecretStoreKind,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the OAuth server and MCP endpoint on loopback.
    Serve(ServeArgs),
    /// Manage stored accounts (personal access tokens).
    #[command(subcommand)]
    Account(AccountCommand),
    /// Decide pending authorization requests of the running daemon.
    #[command(subcommand)]
    Consent(ConsentCommand),
    /// List or disconnect connected assistants of the running daemon.
    #[command(subcommand)]
    Grants(GrantsCommand),
    /// Add Spor Companion to an assistant's configuration (or take it out).
    Connect(ConnectArgs),
    /// Speak MCP over stdin/stdout for hosts that run local programs
    /// (Claude Desktop), relaying to the companion as a signed-in client.
    Bridge(spor_companion::bridge::BridgeArgs),
}

/// `serve` options.
#[derive(Debug, ClapArgs)]
pub struct ServeArgs {
    /// Loopback address and port to listen on.
    #[arg(long, env = "SPOR_COMPANION_LISTEN", default_value_t = SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)))]
    pub listen: SocketAddr,
    /// Spor server (REST base URL) offered when the first token is pasted.
    #[arg(long, env = "SPOR_COMPANION_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Who allows requests: the browser page (Allow and Deny), or only
    /// `spor-companiond consent approve` in a terminal (for shared servers;
    /// the page shows that command and can only deny).
    #[arg(
        long,
        env = "SPOR_COMPANION_CONSENT",
        value_enum,
        default_value = "browser"
    )]
    pub consent: ConsentMode,
}

/// `connect` options.
#[derive(Debug, ClapArgs)]
#[command(group = clap::ArgGroup::new("action").args(["print", "write", "remove", "mcpb"]))]
pub struct ConnectArgs {
    /// The assistant.
    #[arg(value_enum)]
    pub host: spor_companion::connect::Host,
    /// Show what would be added and where; change nothing (the default).
    #[arg(long)]
    pub print: bool,
    /// Add (or update) the `spor` entry.
    #[arg(long)]
    pub write: bool,
    /// Remove the `spor` entry.
    #[arg(long)]
    pub remove: bool,
    /// Claude Desktop: write its extension (an `.mcpb` file to open in
    /// Claude Desktop) instead of editing its config file.
    #[arg(long, value_name = "FILE")]
    pub mcpb: Option<PathBuf>,
    /// Claude Desktop: run our built-in bridge, or `npx mcp-remote` (needs Node.js).
    #[arg(long, value_enum, default_value = "bridge")]
    pub via: spor_companion::connect::Via,
    /// The MCP URL [default: http://127.0.0.1:<configured port>/mcp].
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Edit this config file instead of the host's usual one.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

/// `account` subcommands.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Validate a personal access token with the server and store it.
    Add {
        /// Your organization's own Spor server (REST base URL, e.g.
        /// https://spor.example.com) [default: the Spor server your accounts
        /// already use, else hosted Spor, https://api.sporhq.io].
        #[arg(long, value_name = "URL", conflicts_with = "generic")]
        server: Option<String>,
        /// The MCP endpoint, if unusual [default: the one the server's
        /// accounts already use; hosted Spor's own (https://mcp.sporhq.io/mcp);
        /// else SERVER/mcp]. Required with --generic.
        #[arg(long, value_name = "URL", required_if_eq("generic", "true"))]
        mcp_url: Option<String>,
        /// Any MCP server that takes a bearer token (validated with an MCP initialize).
        #[arg(long, requires = "label")]
        generic: bool,
        /// Display name of a generic server.
        #[arg(long, value_name = "NAME", requires = "generic")]
        label: Option<String>,
        /// Read the token from standard input (tokens are never taken as arguments).
        #[arg(long, required = true)]
        token_stdin: bool,
    },
    /// List stored accounts.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove an account; every assistant connected through it is disconnected.
    Remove {
        /// Account id (see `account list`).
        id: String,
        /// Also revoke the token on the Spor server.
        #[arg(long)]
        revoke_upstream: bool,
    },
}

/// `consent` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConsentCommand {
    /// List pending authorization requests.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Allow a pending request.
    Approve {
        /// Request id.
        id: String,
        /// Account to act as (needed when there is more than one).
        #[arg(long, value_name = "ACCOUNT_ID")]
        account: Option<String>,
        /// What the assistant may do: full (the default), read-only (tools
        /// the server marks read-only), or tools:NAME,NAME,… (only those).
        #[arg(long, value_name = "ACCESS")]
        access: Option<String>,
    },
    /// Deny a pending request.
    Deny {
        /// Request id.
        id: String,
    },
}

/// `grants` subcommands.
#[derive(Debug, Subcommand)]
pub enum GrantsCommand {
    /// List connected assistants.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Include disconnected ones.
        #[arg(long)]
        all: bool,
    },
    /// Disconnect one assistant (ends its tokens and open streams at once).
    Revoke {
        /// Grant id.
        id: String,
    },
    /// Change what an assistant may do, from its next request on.
    Access {
        /// Grant id.
        id: String,
        /// full, read-only, or tools:NAME,NAME,…
        #[arg(long, value_name = "ACCESS")]
        access: String,
    },
    /// Show an assistant's recent calls (method and tool; never arguments).
    Activity {
        /// Grant id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// How many calls, newest first.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}
