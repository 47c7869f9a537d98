//! `spor-companion://` links. Only `add-account` exists: it opens the
//! add-account form with the server filled in. A token is never taken from
//! a link — anything could have written it.

use serde::Serialize;
use tauri::AppHandle;
use tauri_plugin_deep_link::DeepLinkExt as _;

use crate::ui;

/// What the page is asked to open.
#[derive(Debug, Serialize, PartialEq, Eq)]
struct AddAccount {
    server: Option<String>,
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
    match parse(link) {
        Some(add) => {
            ui::show_main(app);
            ui::send(app, ui::ADD_ACCOUNT, add);
        }
        None => tracing::warn!("ignored a spor-companion:// link it does not understand"),
    }
}

/// `spor-companion://add-account?server=URL` → the server, if it is one a
/// token may be sent to; other parameters (a token above all) are ignored.
fn parse(link: &str) -> Option<AddAccount> {
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
    Some(AddAccount { server })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_account_takes_a_valid_server_and_nothing_else() {
        assert_eq!(
            parse("spor-companion://add-account?server=https://api.spor.example&token=spor_pat_x"),
            Some(AddAccount {
                server: Some("https://api.spor.example".into())
            })
        );
        assert_eq!(
            parse("spor-companion://add-account/?server=http://evil.example"),
            Some(AddAccount { server: None })
        );
        assert_eq!(
            parse("spor-companion://add-account"),
            Some(AddAccount { server: None })
        );
        assert_eq!(parse("spor-companion://approve?id=1"), None);
        assert_eq!(parse("https://add-account?server=x"), None);
        assert_eq!(parse("not a url"), None);
    }
}
