//! `spor-companion://` links. Only `add-account` exists: it opens the
//! add-account form with the server filled in. Any web page can fire such a
//! link, so a token is never taken from one, nothing is submitted, and a
//! server not already in use comes with a warning naming its origin.

use serde::Serialize;
use tauri::{AppHandle, Manager as _};
use tauri_plugin_deep_link::DeepLinkExt as _;

use crate::boot::Boot;
use crate::ui;

/// What a link asks for.
#[derive(Debug, PartialEq, Eq)]
enum Link {
    /// Open the add-account form, with this server if it is one a token
    /// may be sent to.
    AddAccount { server: Option<String> },
}

/// What the page is asked to open.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct AddAccount {
    server: Option<String>,
    /// The server's origin when no configured server or stored account uses
    /// it: the form warns that the link came from outside the app.
    unknown_origin: Option<String>,
}

/// Handles the link the app was launched with and every later one (a second
/// launch forwards its arguments here through the single-instance plugin).
pub fn listen(app: &AppHandle) {
    // Outside a bundle (Linux, Windows) the OS only knows the scheme once the
    // running executable registers it.
    #[cfg(any(target_os = "linux", all(debug_assertions, windows)))]
    if let Err(e) = app.deep_link().register_all() {
        tracing::debug!(error = %e, "could not register the spor-companion:// scheme");
    }
    if let Ok(Some(urls)) = app.deep_link().get_current() {
        for url in urls {
            open(app, url.as_str());
        }
    }
    let handle = app.clone();
    app.deep_link().on_open_url(move |event| {
        for url in event.urls() {
            open(&handle, url.as_str());
        }
    });
}

fn open(app: &AppHandle, link: &str) {
    let Some(Link::AddAccount { server }) = parse(link) else {
        tracing::warn!("ignored a spor-companion:// link it does not understand");
        return;
    };
    let app = app.clone();
    // Which servers are in use is a database read: off the caller's thread.
    tauri::async_runtime::spawn(async move {
        let unknown_origin = match &server {
            Some(s) => unknown_origin(&app, s).await,
            None => None,
        };
        ui::show_main(&app);
        ui::send(
            &app,
            ui::ADD_ACCOUNT,
            AddAccount {
                server,
                unknown_origin,
            },
        );
    });
}

/// `server`'s origin unless a configured server or a stored account uses
/// it. When the core did not start or the database cannot be read, nothing
/// counts as known: the warning errs on the side of showing.
async fn unknown_origin(app: &AppHandle, server: &str) -> Option<String> {
    let state = app.state::<Boot>().core().map(|core| core.state.clone());
    let known = match state {
        Some(state) => spor_companion::accounts::known_servers(&state)
            .await
            .unwrap_or_default(),
        None => Vec::new(),
    };
    (!known.iter().any(|k| k == server)).then(|| origin(server))
}

/// Scheme, host and port (the default port left out, as browsers write it).
fn origin(server: &str) -> String {
    url::Url::parse(server)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| server.to_string())
}

/// `spor-companion://add-account?server=URL` → the server, if it is one a
/// token may be sent to; other parameters (a token above all) are ignored.
fn parse(link: &str) -> Option<Link> {
    let url = url::Url::parse(link).ok()?;
    if url.scheme() != "spor-companion" {
        return None;
    }
    let action = url.host_str().unwrap_or_default().to_string() + url.path();
    if action.trim_end_matches('/') != "add-account" {
        return None;
    }
    let server = url
        .query_pairs()
        .find(|(k, _)| k == "server")
        .and_then(|(_, v)| spor_companion::upstream::normalize_server_url(&v).ok());
    Some(Link::AddAccount { server })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(server: Option<&str>) -> Option<Link> {
        Some(Link::AddAccount {
            server: server.map(str::to_string),
        })
    }

    #[test]
    fn add_account_takes_a_valid_server_and_nothing_else() {
        assert_eq!(
            parse("spor-companion://add-account?server=https://api.spor.example&token=spor_pat_x"),
            add(Some("https://api.spor.example"))
        );
        assert_eq!(
            parse("spor-companion://add-account/?server=http://evil.example"),
            add(None)
        );
        assert_eq!(parse("spor-companion://add-account"), add(None));
        assert_eq!(parse("spor-companion://approve?id=1"), None);
        assert_eq!(parse("https://add-account?server=x"), None);
        assert_eq!(parse("not a url"), None);
    }

    #[test]
    fn the_warning_names_scheme_host_and_port() {
        assert_eq!(
            origin("https://spor.attacker.example:8443/api"),
            "https://spor.attacker.example:8443"
        );
        assert_eq!(
            origin("https://api.spor.example"),
            "https://api.spor.example"
        );
        // Look-alike hosts are shown as the ASCII the connection uses.
        assert_eq!(
            origin("https://spör.example"),
            "https://xn--spr-tna.example"
        );
    }
}
