//! The app's configuration lives at the repository root (`tauri.conf.json`),
//! beside the README, so point the build at it.
fn main() {
    tauri_build::try_build(tauri_build::Attributes::new().config_path("../tauri.conf.json"))
        .expect("tauri build step failed");
}
