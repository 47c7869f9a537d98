//! Windows only: the app needs the WebView2 runtime. When it is missing,
//! say so plainly (and where to get it) instead of failing to open a window.

use webview2_com::Microsoft::Web::WebView2::Win32::GetAvailableCoreWebView2BrowserVersionString;
use windows::core::{HSTRING, PCWSTR, PWSTR};
use windows::Win32::UI::WindowsAndMessaging::{MessageBoxW, MB_ICONERROR, MB_OK};

const DOWNLOAD: &str = "https://go.microsoft.com/fwlink/p/?LinkId=2124703";

/// `Ok` when a WebView2 runtime is installed.
pub fn check() -> Result<(), String> {
    let mut version = PWSTR::null();
    // SAFETY: a null browser folder asks for the installed runtime; the
    // out-pointer is a valid local.
    let found =
        unsafe { GetAvailableCoreWebView2BrowserVersionString(PCWSTR::null(), &mut version) };
    match found {
        Ok(()) if !version.is_null() => Ok(()),
        _ => Err(format!(
            "Spor Companion needs the Microsoft Edge WebView2 Runtime, which is not installed on this computer.\n\n\
             Install it from {DOWNLOAD} and start Spor Companion again."
        )),
    }
}

/// Shows the explanation in a message box.
pub fn explain(message: &str) {
    let text = HSTRING::from(message);
    let title = HSTRING::from("Spor Companion");
    // SAFETY: both strings outlive the call; no owner window.
    unsafe {
        MessageBoxW(None, &text, &title, MB_OK | MB_ICONERROR);
    }
}
