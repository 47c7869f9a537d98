//! Redirect URI rules (DESIGN §4, RFC 8252 §7.3).
//!
//! Input: UTF-8 text, `registered\npresented` (no newline: presented = registered).
//! Checks: an accepted URI is `https`, or `http` on 127.0.0.1/localhost/[::1];
//! has no fragment, credentials, whitespace or control characters; matches
//! itself; matching ignores the port only for loopback URIs, is otherwise
//! exact (scheme, host, path, query), is symmetric, and only ever accepts a
//! presented URI that itself passes the registration rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spor_wire::oauth::redirect_uri::RedirectUri;
use spor_companion_fuzz::is_loopback_host;
use url::Url;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (registered, presented) = text.split_once('\n').unwrap_or((text, text));

    let Ok(reg) = RedirectUri::parse(registered) else {
        return;
    };
    // What was accepted follows the rules.
    assert!(!registered.is_empty() && registered.len() <= 2048);
    assert!(!registered
        .chars()
        .any(|c| c.is_whitespace() || c.is_control()));
    assert!(
        !registered.contains('#'),
        "fragment accepted: {registered:?}"
    );
    let url = Url::parse(registered).expect("accepted URI parses");
    assert!(url.username().is_empty() && url.password().is_none());
    let loopback = match url.scheme() {
        "https" => {
            assert!(url.host().is_some());
            false
        }
        "http" => {
            assert!(
                is_loopback_host(&url),
                "http to a non-loopback host: {registered:?}"
            );
            true
        }
        other => panic!("scheme {other:?} accepted: {registered:?}"),
    };
    assert!(!reg.display_host().is_empty());
    assert!(
        reg.matches(registered),
        "does not match itself: {registered:?}"
    );

    // Loopback: any port matches; https: another port does not.
    let mut other_port = url.clone();
    let port = 1 + (data.len() as u16 % 65000);
    if other_port.set_port(Some(port)).is_ok() {
        if loopback {
            assert!(
                reg.matches(other_port.as_str()),
                "{registered:?} vs port {port}"
            );
        } else if other_port.port_or_known_default() != url.port_or_known_default() {
            assert!(
                !reg.matches(other_port.as_str()),
                "{registered:?} vs port {port}"
            );
        }
    }

    if reg.matches(presented) {
        // A presented URI that matches passes the registration rules itself...
        let pres = RedirectUri::parse(presented)
            .unwrap_or_else(|e| panic!("{presented:?} matched {registered:?} but is refused: {e}"));
        // ...and matching is symmetric...
        assert!(
            pres.matches(registered),
            "{presented:?} ~ {registered:?} not symmetric"
        );
        // ...and exact but for a loopback port.
        let p = Url::parse(presented).expect("parses");
        assert_eq!(p.scheme(), url.scheme());
        assert_eq!(p.host(), url.host());
        assert_eq!(p.path(), url.path());
        assert_eq!(p.query(), url.query());
        assert_eq!(p.fragment(), None);
        if !loopback {
            assert_eq!(p.port_or_known_default(), url.port_or_known_default());
        }
    }
});
