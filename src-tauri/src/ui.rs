//! Talking to the page: events (held back until the page is listening), the
//! main window's raising, and the server status in the tray.

use std::sync::Mutex;

use serde::Serialize;
use spor_companion::desktop::ServerStatus;
use tauri::{AppHandle, Emitter, Manager};

/// The page's event names.
pub const CHANGED: &str = "companion://changed";
/// Server status updates.
pub const SERVER: &str = "companion://server";
/// Open the add-account dialog (deep link).
pub const ADD_ACCOUNT: &str = "companion://add-account";
/// Open the replace-token dialog (rejected token).
pub const REPLACE_TOKEN: &str = "companion://replace-token";

/// Events for the page before it said it is ready; delivered in order then.
#[derive(Default)]
pub struct Gate {
    state: Mutex<(bool, Vec<(&'static str, serde_json::Value)>)>,
}

impl Gate {
    /// Delivers the held events and lets later ones straight through.
    pub fn open(&self, app: &AppHandle) {
        let held = {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            s.0 = true;
            std::mem::take(&mut s.1)
        };
        for (name, payload) in held {
            let _ = app.emit(name, payload);
        }
    }

    fn send(&self, app: &AppHandle, name: &'static str, payload: serde_json::Value) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.0 {
            drop(s);
            let _ = app.emit(name, payload);
        } else {
            s.1.push((name, payload));
        }
    }
}

/// Sends an event to the page, or holds it until the page is ready.
pub fn send(app: &AppHandle, name: &'static str, payload: impl Serialize) {
    let Ok(payload) = serde_json::to_value(payload) else {
        return;
    };
    app.state::<Gate>().send(app, name, payload);
}

/// Shows, unminimizes and focuses the main window, in front.
pub fn show_main(app: &AppHandle) {
    let Some(w) = app.get_webview_window("main") else {
        return;
    };
    let _ = w.unminimize();
    let _ = w.show();
    // Window managers may refuse focus to a background app; a moment on top
    // brings it in front anyway.
    let _ = w.set_always_on_top(true);
    let _ = w.set_focus();
    let _ = w.set_always_on_top(false);
}

/// Tells the page and the tray where the server is now.
pub fn server_changed(app: &AppHandle, status: &ServerStatus) {
    if let Some(url) = &status.mcp_url {
        // The line tests and scripts wait for, as the headless daemon prints.
        println!("listening on {url}");
    }
    crate::tray::set_url(app, status.mcp_url.as_deref());
    send(app, SERVER, status);
}
