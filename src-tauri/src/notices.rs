//! Core events to the page, to the window and to desktop notifications: a
//! consent request raises the window; a new assistant and a rejected token
//! are announced.

use spor_companion::events::Event;
use spor_companion::state::AppState;
use tauri::AppHandle;
use tauri_plugin_notification::NotificationExt as _;
use tokio::sync::broadcast::error::RecvError;

use crate::ui;

/// Follows the core's events for the life of the app.
pub fn follow(app: AppHandle, state: AppState) {
    let mut rx = state.events.subscribe();
    tauri::async_runtime::spawn(async move {
        loop {
            let event = match rx.recv().await {
                Ok(e) => e,
                // Missed some: the page re-reads everything on any event.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            };
            ui::send(&app, ui::CHANGED, &event);
            match &event {
                Event::ConsentRequested { .. } => ui::show_main(&app),
                Event::GrantCreated { grant_id } => {
                    let name = client_name(&state, grant_id).await;
                    notify(
                        &app,
                        "Assistant connected",
                        &format!("{name} can now use your Spor account. Disconnect it any time in Spor Companion."),
                    );
                }
                Event::AccountRejected { account_id } => {
                    let org = state
                        .store
                        .account(account_id.clone())
                        .await
                        .ok()
                        .flatten()
                        .map(|a| a.org)
                        .unwrap_or_default();
                    notify(
                        &app,
                        "Spor token rejected",
                        &format!("The server no longer accepts the token for {org}. Open Spor Companion to paste a new one."),
                    );
                    ui::send(
                        &app,
                        ui::REPLACE_TOKEN,
                        serde_json::json!({ "accountId": account_id }),
                    );
                }
                _ => {}
            }
        }
    });
}

async fn client_name(state: &AppState, grant_id: &str) -> String {
    state
        .store
        .grants(false)
        .await
        .ok()
        .and_then(|g| g.into_iter().find(|g| g.id == grant_id))
        .map(|g| g.client_name)
        .unwrap_or_else(|| "An assistant".into())
}

fn notify(app: &AppHandle, title: &str, body: &str) {
    // No notification service (a bare X session, CI) is not an error.
    if let Err(e) = app.notification().builder().title(title).body(body).show() {
        tracing::debug!(error = %e, "notification not shown");
    }
}
