//! A companion for the end-to-end test of Client ID Metadata Documents
//! (`tests/e2e/test/cimd.test.mjs`): the real server on a free loopback
//! port, over `--data-dir` with the file secret store, whose document
//! fetcher reaches a local HTTPS server serving one client's document.
//! The document's host must look public to the fetcher and its certificate
//! must be trusted, which the shipped programs never allow: this example
//! uses the library's seam (`ClientDocuments::with_network`) and is built
//! only with the tests.
//!
//! Usage: `cimd_companion --data-dir DIR --name NAME --redirect URI...`;
//! prints `document at URL` and `listening on MCP_URL`, stops on SIGINT or
//! SIGTERM.

#[allow(dead_code)]
#[path = "../tests/it/support/documents.rs"]
mod documents;

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::json;
use spor_companion::config::{Config, ConsentMode};
use spor_companion::secrets::SecretStoreKind;
use spor_companion::service::Companion;
use spor_companion::state::AppState;

use documents::{Answer, DocumentServer};

const PATH: &str = "/oauth/client-metadata.json";

#[tokio::main]
async fn main() -> Result<()> {
    let mut data_dir = None;
    let mut name = None;
    let mut redirects = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--data-dir" => data_dir = Some(PathBuf::from(value)),
            "--name" => name = Some(value),
            "--redirect" => redirects.push(value),
            other => bail!("unknown argument {other}"),
        }
    }
    let (Some(data_dir), Some(name)) = (data_dir, name) else {
        bail!("usage: cimd_companion --data-dir DIR --name NAME --redirect URI...");
    };

    let docs = DocumentServer::start().await;
    let url = docs.url(PATH);
    docs.serve(
        PATH,
        Answer::json(&json!({
            "client_id": url,
            "client_name": name,
            "redirect_uris": redirects,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })),
    );
    let mut state = AppState::open(
        Config {
            data_dir,
            default_server: None,
            consent_mode: ConsentMode::Browser,
        },
        SecretStoreKind::File,
    )?;
    state.client_documents = docs.fetcher();
    let stop = spor_companion::shutdown::signal();
    let companion = Companion::start(state, "127.0.0.1:0".parse()?).await?;
    let mut out = std::io::stdout();
    writeln!(out, "document at {url}")?;
    writeln!(out, "listening on {}", companion.mcp_url())?;
    out.flush()?;
    stop.await;
    companion.stop().await?;
    docs.stop().await;
    Ok(())
}
