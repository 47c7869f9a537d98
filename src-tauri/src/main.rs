//! Spor Companion, the desktop app: the core server in-process, a tray, and
//! one window for consent, accounts and connected assistants. Everything
//! here is wiring; what the buttons do lives in `spor_companion::desktop`.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod boot;
mod commands;
mod links;
mod notices;
mod tray;
mod ui;
#[cfg(windows)]
mod webview2;

use tauri::{Manager, RunEvent, WindowEvent};

fn main() {
    // Hosts that only run local programs (Claude Desktop) start
    // `spor-companion bridge URL`: a stdio relay, with no window and no
    // single-instance hand-over to a running app.
    let mut argv = std::env::args_os().skip(1).peekable();
    if argv.peek().is_some_and(|a| a == "bridge") {
        let code = spor_companion::bridge::main_from_args(argv);
        std::process::exit(if code == std::process::ExitCode::SUCCESS {
            0
        } else {
            1
        });
    }

    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();

    #[cfg(windows)]
    if let Err(message) = webview2::check() {
        webview2::explain(&message);
        std::process::exit(1);
    }

    let hidden = std::env::args().any(|a| a == boot::HIDDEN_ARG);
    let boot = boot::Boot::open();

    let app = tauri::Builder::default()
        // First, so a second launch is caught before anything else starts.
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            // Deep links in the arguments reach `links` through the deep-link
            // plugin; a plain second launch just brings the window forward.
            ui::show_main(app);
        }))
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_clipboard_manager::init())
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            Some(vec![boot::HIDDEN_ARG]),
        ))
        .manage(boot)
        .manage(ui::Gate::default())
        .invoke_handler(tauri::generate_handler![
            commands::overview,
            commands::ui_ready,
            commands::consent_view,
            commands::approve,
            commands::consent_tools,
            commands::deny,
            commands::add_account,
            commands::replace_token,
            commands::remove_account,
            commands::disconnect,
            commands::set_access,
            commands::account_tools,
            commands::activity,
            commands::check_upstreams,
            commands::use_port,
            commands::connect_hosts,
            commands::connect_host,
            commands::save_extension,
            commands::copy_text,
            commands::get_autostart,
            commands::set_autostart,
        ])
        .setup(move |app| {
            let handle = app.handle().clone();
            tray::build(&handle)?;
            links::listen(&handle);
            if let Some(core) = app.state::<boot::Boot>().core() {
                let status = tauri::async_runtime::block_on(core.server.start(core.port));
                ui::server_changed(&handle, &status);
                notices::follow(handle.clone(), core.state.clone());
            }
            if !hidden {
                ui::show_main(&handle);
            }
            Ok(())
        })
        .on_window_event(|window, event| {
            // Closing the window keeps the server running in the tray.
            if let WindowEvent::CloseRequested { api, .. } = event {
                api.prevent_close();
                let _ = window.hide();
            }
        })
        .build(tauri::generate_context!("../tauri.conf.json"));

    let app = match app {
        Ok(app) => app,
        Err(e) => {
            eprintln!("error: Spor Companion could not start its window: {e}");
            std::process::exit(1);
        }
    };
    app.run(|handle, event| {
        if let RunEvent::Exit = event {
            if let Some(core) = handle.state::<boot::Boot>().core() {
                tauri::async_runtime::block_on(core.server.stop());
            }
        }
    });
}
