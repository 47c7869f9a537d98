//! The tray icon: Open, the MCP URL with Copy, Quit. Closing the window
//! leaves the app here, still serving.

use std::sync::Mutex;

use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{MouseButton, MouseButtonState, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Manager, Wry};
use tauri_plugin_clipboard_manager::ClipboardExt as _;

const OPEN: &str = "open";
const URL: &str = "url";
const COPY: &str = "copy-url";
const QUIT: &str = "quit";

/// The menu entries that change, and the URL they copy.
struct Items {
    url: MenuItem<Wry>,
    copy: MenuItem<Wry>,
    current: Mutex<Option<String>>,
}

/// Creates the tray icon and its menu.
pub fn build(app: &AppHandle) -> tauri::Result<()> {
    let open = MenuItem::with_id(app, OPEN, "Open Spor Companion", true, None::<&str>)?;
    let url = MenuItem::with_id(app, URL, "Starting…", false, None::<&str>)?;
    let copy = MenuItem::with_id(app, COPY, "Copy MCP URL", false, None::<&str>)?;
    let quit = MenuItem::with_id(app, QUIT, "Quit Spor Companion", true, None::<&str>)?;
    let menu = Menu::with_items(
        app,
        &[
            &open,
            &PredefinedMenuItem::separator(app)?,
            &url,
            &copy,
            &PredefinedMenuItem::separator(app)?,
            &quit,
        ],
    )?;
    let icon = Image::from_bytes(include_bytes!("../../icons/tray.png"))?;
    TrayIconBuilder::with_id("main")
        .icon(icon)
        .tooltip("Spor Companion")
        .menu(&menu)
        .show_menu_on_left_click(false)
        .on_menu_event(|app, event| match event.id().as_ref() {
            OPEN => crate::ui::show_main(app),
            COPY => {
                let url = app
                    .state::<Items>()
                    .current
                    .lock()
                    .ok()
                    .and_then(|u| u.clone());
                if let Some(url) = url {
                    if let Err(e) = app.clipboard().write_text(url) {
                        tracing::warn!(error = %e, "could not copy the MCP URL");
                    }
                }
            }
            // Ends the event loop; the server is stopped on `RunEvent::Exit`.
            QUIT => app.exit(0),
            _ => {}
        })
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = event
            {
                crate::ui::show_main(tray.app_handle());
            }
        })
        .build(app)?;
    app.manage(Items {
        url,
        copy,
        current: Mutex::new(None),
    });
    Ok(())
}

/// Shows the MCP URL in the menu (or that the server is not running).
pub fn set_url(app: &AppHandle, url: Option<&str>) {
    let Some(items) = app.try_state::<Items>() else {
        return;
    };
    let text = url.unwrap_or("Not serving — open the window");
    let _ = items.url.set_text(text);
    let _ = items.copy.set_enabled(url.is_some());
    let mut current = items.current.lock().unwrap_or_else(|p| p.into_inner());
    *current = url.map(str::to_string);
}
