//! RFC 7591 registration metadata of a public client, checked.

use serde_json::Value;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use super::redirect_uri::RedirectUri;
use super::{check_scope, OAuthError};

/// Largest registration body accepted.
pub const MAX_BODY: usize = 16 * 1024;
/// Most redirect URIs one client may register.
pub(super) const MAX_REDIRECT_URIS: usize = 10;
/// Longest client name kept.
pub(super) const MAX_NAME: usize = 100;

fn metadata_error(msg: impl Into<String>) -> OAuthError {
    OAuthError::InvalidClientMetadata(msg.into())
}

/// A kind of character a client name may not hold: the consent shows the
/// name to the person as the app's own words, so nothing in it may hide
/// text, reorder what follows it, or break the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameFault {
    /// Bidi embeddings, overrides, isolates and marks: they make "edoC
    /// edualC" read "Claude Code" and can reverse the text after the name.
    BidiControl,
    /// Other characters of category Cf (zero-width space and joiners, word
    /// joiner, soft hyphen, BOM, tag characters, …): invisible, so two
    /// names that look alike can differ.
    InvisibleFormat,
    /// C0 and C1 controls (Cc), tab and newline included.
    Control,
    /// U+2028 and U+2029 (Zl, Zp): they break the line.
    Separator,
    /// Private-use code points (Co): their look depends on the font.
    PrivateUse,
    /// Unassigned code points and noncharacters (Cn): no defined look.
    Unassigned,
}

impl NameFault {
    /// What is wrong with `c` in a client name, if anything.
    fn of(c: char) -> Option<Self> {
        // Listed first: all are Cf, but a reordering deserves its own name.
        const BIDI: &[char] = &[
            '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}',
            '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
        ];
        if BIDI.contains(&c) {
            return Some(Self::BidiControl);
        }
        match c.general_category() {
            GeneralCategory::Format => Some(Self::InvisibleFormat),
            GeneralCategory::Control => Some(Self::Control),
            GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator => {
                Some(Self::Separator)
            }
            GeneralCategory::PrivateUse => Some(Self::PrivateUse),
            GeneralCategory::Unassigned | GeneralCategory::Surrogate => Some(Self::Unassigned),
            _ => None,
        }
    }

    /// The kind, as the refusal names it.
    fn describe(self) -> &'static str {
        match self {
            Self::BidiControl => "a bidirectional control character",
            Self::InvisibleFormat => "an invisible formatting character",
            Self::Control => "a control character",
            Self::Separator => "a line or paragraph separator",
            Self::PrivateUse => "a private-use character",
            Self::Unassigned => "an unassigned code point",
        }
    }
}

/// A stored client name made safe to show on one line: each character that
/// registration refuses (names stored before it did may hold them) is
/// written out as `<U+XXXX>`, so it can neither hide, reorder nor break
/// anything and the person sees that it was there.
pub fn escape_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if NameFault::of(c).is_some() {
            out.push_str(&format!("<U+{:04X}>", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// Checks a client name as sent (before trimming, so a trailing newline is
/// refused too); the refusal names the first offending character.
pub(super) fn check_name_characters(name: &str) -> Result<(), OAuthError> {
    match name.chars().find_map(|c| NameFault::of(c).map(|f| (c, f))) {
        Some((c, fault)) => Err(metadata_error(format!(
            "client_name contains {} (U+{:04X})",
            fault.describe(),
            u32::from(c)
        ))),
        None => Ok(()),
    }
}

/// Checks an optional array-of-strings field against allowed values.
pub(super) fn check_list(
    body: &Value,
    field: &str,
    allowed: &[&str],
    required: &str,
) -> Result<(), OAuthError> {
    let Some(v) = body.get(field) else {
        return Ok(());
    };
    let items = v
        .as_array()
        .ok_or_else(|| metadata_error(format!("{field} must be an array of strings")))?;
    let mut seen_required = false;
    for item in items {
        let s = item
            .as_str()
            .ok_or_else(|| metadata_error(format!("{field} must be an array of strings")))?;
        if !allowed.contains(&s) {
            return Err(metadata_error(format!(
                "{field} value {s:?} is not supported"
            )));
        }
        seen_required |= s == required;
    }
    if !seen_required {
        return Err(metadata_error(format!("{field} must include {required:?}")));
    }
    Ok(())
}

/// What kind of application registers (OpenID Connect Dynamic Client
/// Registration §2, which MCP 2026-07-28 clients send): it decides which
/// redirect URIs it may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplicationType {
    /// A program on the person's machine: loopback redirects only, since an
    /// https redirect would hand the code to a web server instead.
    Native,
    /// A web application: https redirects only.
    Web,
}

impl ApplicationType {
    /// The value as registration metadata spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Web => "web",
        }
    }

    /// Reads a stored or sent value; `None` for anything else.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "native" => Some(Self::Native),
            "web" => Some(Self::Web),
            _ => None,
        }
    }

    /// Checks a redirect URI that passed the general rules against this
    /// kind of application.
    fn check_redirect(self, raw: &str, uri: &RedirectUri) -> Result<(), OAuthError> {
        match (self, uri.is_loopback()) {
            (Self::Native, true) | (Self::Web, false) => Ok(()),
            (Self::Native, false) => Err(OAuthError::InvalidRedirectUri(format!(
                "{raw:?}: a native application must use a loopback redirect URI (http://127.0.0.1, localhost or [::1])"
            ))),
            (Self::Web, true) => Err(OAuthError::InvalidRedirectUri(format!(
                "{raw:?}: a web application must use an https redirect URI"
            ))),
        }
    }
}

/// The metadata of a registration request, once checked.
#[derive(Debug)]
pub struct Registration {
    /// The client's name, trimmed (or a placeholder).
    pub name: String,
    /// The redirect URIs, as sent; each passed [`RedirectUri::parse`].
    pub redirect_uris: Vec<String>,
    /// The scope granted: ours, plus `offline_access` when asked for.
    pub scope: String,
    /// The application type sent, if any (absent keeps the general rules).
    pub application_type: Option<ApplicationType>,
}

/// Checks a registration body (RFC 7591 metadata of a public client). Needs
/// no state: the handler stores what this returns.
pub fn check_metadata(bytes: &[u8]) -> Result<Registration, OAuthError> {
    let body: Value = serde_json::from_slice(bytes)
        .map_err(|_| metadata_error("request body is not valid JSON"))?;
    if !body.is_object() {
        return Err(metadata_error("request body must be a JSON object"));
    }

    let application_type = match body.get("application_type") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(ApplicationType::parse(s).ok_or_else(|| {
            metadata_error(format!(
                "application_type {s:?} is not supported; use \"native\" or \"web\""
            ))
        })?),
        Some(_) => return Err(metadata_error("application_type must be a string")),
    };

    let uris = body
        .get("redirect_uris")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            OAuthError::InvalidRedirectUri("redirect_uris is required (an array of URIs)".into())
        })?;
    if uris.is_empty() || uris.len() > MAX_REDIRECT_URIS {
        return Err(OAuthError::InvalidRedirectUri(format!(
            "register 1 to {MAX_REDIRECT_URIS} redirect URIs"
        )));
    }
    let mut redirect_uris = Vec::with_capacity(uris.len());
    for u in uris {
        let raw = u.as_str().ok_or_else(|| {
            OAuthError::InvalidRedirectUri("redirect URIs must be strings".into())
        })?;
        let uri = RedirectUri::parse(raw).map_err(OAuthError::InvalidRedirectUri)?;
        if let Some(kind) = application_type {
            kind.check_redirect(raw, &uri)?;
        }
        redirect_uris.push(raw.to_string());
    }

    if let Some(m) = body.get("token_endpoint_auth_method") {
        if m.as_str() != Some("none") {
            return Err(metadata_error(
                "only public clients are supported: token_endpoint_auth_method must be \"none\"",
            ));
        }
    }
    check_list(
        &body,
        "grant_types",
        &["authorization_code", "refresh_token"],
        "authorization_code",
    )?;
    check_list(&body, "response_types", &["code"], "code")?;
    let scope = match body.get("scope") {
        None | Some(Value::Null) => check_scope(None),
        Some(Value::String(s)) => check_scope(Some(s)),
        Some(_) => Err(metadata_error("scope must be a string")),
    }
    .map_err(|e| metadata_error(e.description().to_string()))?;

    let name = match body.get("client_name") {
        None | Some(Value::Null) => "Unnamed client".to_string(),
        Some(Value::String(s)) => {
            check_name_characters(s)?;
            let s = s.trim();
            if s.is_empty() || s.chars().count() > MAX_NAME {
                return Err(metadata_error(format!(
                    "client_name must be 1 to {MAX_NAME} printable characters"
                )));
            }
            s.to_string()
        }
        Some(_) => return Err(metadata_error("client_name must be a string")),
    };
    Ok(Registration {
        name,
        redirect_uris,
        scope,
        application_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(name: &str) -> Result<Registration, OAuthError> {
        let body = serde_json::json!({
            "client_name": name,
            "redirect_uris": ["http://127.0.0.1/cb"],
        });
        check_metadata(body.to_string().as_bytes())
    }

    /// Asserts `name` is refused as `invalid_client_metadata` with exactly
    /// `description`.
    fn assert_refused(name: &str, description: &str) {
        match register(name) {
            Err(e @ OAuthError::InvalidClientMetadata(_)) => {
                assert_eq!(e.description(), description, "{name:?}")
            }
            other => panic!("{name:?}: {other:?}"),
        }
    }

    #[test]
    fn names_in_any_script_and_with_emoji_pass() {
        for name in [
            "Claude Code",
            "Claude 🤖",
            "مساعد كلود",
            "עוזר קוד",
            "克劳德助手",
            "クロード",
            "클로드",
            "Ассистент",
            "हिन्दी सहायक",
            "Cafe\u{0301} (combining accent)",
            "I \u{2764}\u{FE0F} MCP",
            "No\u{00A0}break\u{3000}wide",
            "  padded  ",
        ] {
            let r = register(name).unwrap_or_else(|e| panic!("{name:?}: {e:?}"));
            assert_eq!(r.name, name.trim());
        }
    }

    #[test]
    fn bidi_controls_are_refused_by_name() {
        for c in [
            '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}',
            '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
        ] {
            assert_refused(
                &format!("Claude{c} Code"),
                &format!(
                    "client_name contains a bidirectional control character (U+{:04X})",
                    u32::from(c)
                ),
            );
        }
        assert_refused(
            "edoC \u{202E}edualC",
            "client_name contains a bidirectional control character (U+202E)",
        );
    }

    #[test]
    fn zero_width_and_other_invisible_format_characters_are_refused() {
        for c in [
            '\u{00AD}',
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{2061}',
            '\u{2064}',
            '\u{FEFF}',
            '\u{180E}',
            '\u{E0001}',
            '\u{E0041}',
            '\u{E007F}',
        ] {
            assert_refused(
                &format!("Clau{c}de"),
                &format!(
                    "client_name contains an invisible formatting character (U+{:04X})",
                    u32::from(c)
                ),
            );
        }
    }

    #[test]
    fn control_characters_are_refused_even_at_the_ends() {
        for (name, c) in [
            ("Claude\tCode", 0x09),
            ("Claude\nCode", 0x0A),
            ("Claude Code\n", 0x0A),
            ("\rClaude", 0x0D),
            ("Claude\u{0000}", 0x00),
            ("Claude\u{001B}[31m", 0x1B),
            ("Claude\u{007F}", 0x7F),
            ("Claude\u{0085}", 0x85),
            ("Claude\u{009B}", 0x9B),
        ] {
            assert_refused(
                name,
                &format!("client_name contains a control character (U+{c:04X})"),
            );
        }
    }

    #[test]
    fn line_and_paragraph_separators_are_refused() {
        assert_refused(
            "Claude\u{2028}Code",
            "client_name contains a line or paragraph separator (U+2028)",
        );
        assert_refused(
            "Claude Code\u{2029}",
            "client_name contains a line or paragraph separator (U+2029)",
        );
    }

    #[test]
    fn private_use_and_unassigned_code_points_are_refused() {
        for c in ['\u{E000}', '\u{F8FF}', '\u{F0000}', '\u{10FFFD}'] {
            assert_refused(
                &format!("Claude {c}"),
                &format!(
                    "client_name contains a private-use character (U+{:04X})",
                    u32::from(c)
                ),
            );
        }
        for c in ['\u{0378}', '\u{FFFF}', '\u{FDD0}', '\u{E0080}'] {
            assert_refused(
                &format!("Claude {c}"),
                &format!(
                    "client_name contains an unassigned code point (U+{:04X})",
                    u32::from(c)
                ),
            );
        }
    }

    #[test]
    fn the_first_offending_character_is_named() {
        assert_refused(
            "A\u{200B}B\u{202E}C",
            "client_name contains an invisible formatting character (U+200B)",
        );
    }

    #[test]
    fn escaping_writes_out_exactly_the_refused_characters() {
        assert_eq!(escape_name("Claude 🤖 עוזר"), "Claude 🤖 עוזר");
        assert_eq!(
            escape_name("edoC\u{202E}\u{2069} x\u{200B}y\u{2028}"),
            "edoC<U+202E><U+2069> x<U+200B>y<U+2028>"
        );
    }

    fn register_typed(kind: serde_json::Value, uris: &[&str]) -> Result<Registration, OAuthError> {
        let body = serde_json::json!({
            "client_name": "App",
            "application_type": kind,
            "redirect_uris": uris,
        });
        check_metadata(body.to_string().as_bytes())
    }

    #[test]
    fn a_native_application_registers_loopback_redirects_only() {
        let r = register_typed(
            "native".into(),
            &["http://127.0.0.1/callback", "http://localhost:3000/cb"],
        )
        .expect("loopback");
        assert_eq!(r.application_type, Some(ApplicationType::Native));
        match register_typed("native".into(), &["http://127.0.0.1/cb", "https://app.example/cb"]) {
            Err(e @ OAuthError::InvalidRedirectUri(_)) => assert_eq!(
                e.description(),
                "\"https://app.example/cb\": a native application must use a loopback redirect URI (http://127.0.0.1, localhost or [::1])"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_web_application_registers_https_redirects_only() {
        let r = register_typed("web".into(), &["https://app.example/cb"]).expect("https");
        assert_eq!(r.application_type, Some(ApplicationType::Web));
        match register_typed("web".into(), &["http://127.0.0.1/cb"]) {
            Err(e @ OAuthError::InvalidRedirectUri(_)) => assert_eq!(
                e.description(),
                "\"http://127.0.0.1/cb\": a web application must use an https redirect URI"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_missing_application_type_keeps_the_general_rules() {
        let r = register_typed(
            serde_json::Value::Null,
            &["http://127.0.0.1/cb", "https://app.example/cb"],
        )
        .expect("both kinds");
        assert_eq!(r.application_type, None);
    }

    #[test]
    fn an_unknown_application_type_is_refused() {
        for (kind, description) in [
            (
                serde_json::json!("desktop"),
                "application_type \"desktop\" is not supported; use \"native\" or \"web\"",
            ),
            (
                serde_json::json!(["native"]),
                "application_type must be a string",
            ),
        ] {
            match register_typed(kind, &["http://127.0.0.1/cb"]) {
                Err(e @ OAuthError::InvalidClientMetadata(_)) => {
                    assert_eq!(e.description(), description)
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn length_and_emptiness_are_still_checked() {
        assert_refused("   ", "client_name must be 1 to 100 printable characters");
        assert_refused(
            &"x".repeat(101),
            "client_name must be 1 to 100 printable characters",
        );
        assert!(register(&"x".repeat(100)).is_ok());
    }
}
