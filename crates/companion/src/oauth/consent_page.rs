//! The consent page (headless mode) and the shown-error page. Plain HTML with
//! a same-origin stylesheet and script, so a strict CSP holds.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::config::ConsentMode;
use crate::consent::requester::Requester;
use crate::consent::{OrgOption, PendingRequest};

/// Where the page's script is served.
pub const SCRIPT_PATH: &str = "/oauth/assets/consent.js";
/// Where the page's stylesheet is served.
pub const STYLE_PATH: &str = "/oauth/assets/consent.css";

const SCRIPT: &str = include_str!("assets/consent.js");
const STYLE: &str = include_str!("assets/consent.css");

/// What the consent page shows.
#[derive(Debug)]
pub struct PageModel<'a> {
    /// The request being decided.
    pub request: &'a PendingRequest,
    /// Organization choices.
    pub options: Vec<OrgOption>,
    /// The server new tokens are for, if known.
    pub known_server: Option<String>,
    /// Who decides.
    pub mode: ConsentMode,
    /// An error from the last form submission.
    pub error: Option<String>,
}

/// Escapes text for HTML element content and quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn origin_of(uri: &str) -> Option<String> {
    let u = url::Url::parse(uri).ok()?;
    Some(u.origin().ascii_serialization()).filter(|o| o != "null")
}

fn html(status: StatusCode, body: String, form_action_extra: Option<String>) -> Response {
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         form-action 'self'{}; frame-ancestors 'none'; base-uri 'none'",
        form_action_extra.map(|o| format!(" {o}")).unwrap_or_default()
    );
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

fn shell(title: &str, main_attrs: &str, inner: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Spor Companion</title><link rel=\"stylesheet\" href=\"{STYLE_PATH}\"></head>\
         <body><main class=\"card\"{main_attrs}>\
         <header class=\"brand\"><span class=\"logo\" aria-hidden=\"true\">S</span><span>Spor Companion</span></header>\
         {inner}</main><script src=\"{SCRIPT_PATH}\"></script></body></html>",
        title = esc(title)
    )
}

/// A page explaining why the request cannot go on; never redirects.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let inner = format!(
        "<h1>Can't connect this assistant</h1><p class=\"error\" role=\"alert\">{}</p>\
         <p class=\"muted\">You can close this tab.</p>",
        esc(message)
    );
    html(status, shell("Can't connect", "", &inner), None)
}

fn token_form(m: &PageModel<'_>, open: bool) -> String {
    let r = m.request;
    let server_field = match &m.known_server {
        Some(s) => format!("<p class=\"muted\">Server: <code>{}</code></p>", esc(s)),
        None => "<label for=\"server_url\">Spor server URL</label>\
                 <input id=\"server_url\" name=\"server_url\" type=\"url\" required \
                 placeholder=\"https://api.spor.example\" autocomplete=\"url\">"
            .to_string(),
    };
    let fields = format!(
        "<form method=\"post\" action=\"/oauth/consent/{id}/account\" class=\"token-form\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">{server_field}\
         <label for=\"pat\">Personal access token</label>\
         <input id=\"pat\" name=\"pat\" type=\"password\" required autocomplete=\"off\" spellcheck=\"false\" \
         placeholder=\"spor_pat_…\">\
         <p class=\"hint\">Create one in Spor under Settings → Access tokens. It is kept in this computer's \
         keychain and never shown to the assistant.</p>\
         <button type=\"submit\" class=\"secondary\">Add token</button></form>",
        id = esc(&r.id),
        csrf = esc(r.csrf.expose()),
    );
    if open {
        fields
    } else {
        format!(
            "<details><summary>Paste a token for another organization</summary>{fields}</details>"
        )
    }
}

/// The consent page for a pending request.
pub fn consent(status: StatusCode, m: &PageModel<'_>) -> Response {
    let r = m.request;
    let mut inner = format!(
        "<h1>Connect an assistant</h1>\
         <p class=\"lead\"><strong>{name}</strong> <span class=\"tag\">name as stated by the app</span> \
         wants to use your Spor account.</p>\
         <dl class=\"facts\">{program}<dt>Returns to</dt><dd><code>{host}</code>{listener}</dd>\
         <dt>Access</dt><dd>Read and write your team graph through Spor's tools, as you.</dd></dl>{warnings}",
        name = esc(&r.client_name),
        host = esc(&r.redirect_host),
        program = program_fact(&r.requester),
        listener = listener_fact(&r.requester),
        warnings = requester_warnings(&r.requester),
    );
    if let Some(e) = &m.error {
        inner.push_str(&format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e)));
    }
    let usable: Vec<&OrgOption> = m
        .options
        .iter()
        .filter(|o| o.account_id.is_some() && !o.rejected)
        .collect();
    let main_attrs = format!(
        " data-request=\"{}\" data-csrf=\"{}\"",
        esc(&r.id),
        esc(r.csrf.expose())
    );
    if m.mode == ConsentMode::Native {
        inner.push_str(
            "<div class=\"waiting\" role=\"status\"><span class=\"spinner\" aria-hidden=\"true\"></span>\
             <p><strong>Approve in Spor Companion.</strong> The Spor Companion window is asking you now; \
             this tab continues by itself.</p></div>",
        );
        return html(
            status,
            shell("Approve in Spor Companion", &main_attrs, &inner),
            None,
        );
    }
    if usable.is_empty() {
        inner.push_str(
            "<h2>First, add your Spor token</h2><p>Paste a personal access token once; Spor Companion \
             remembers it for every assistant you connect.</p>",
        );
        inner.push_str(&token_form(m, true));
        if m.options.iter().any(|o| o.rejected) {
            inner.push_str("<p class=\"muted\">A stored token was rejected by the server; paste a new one.</p>");
        }
    } else {
        let mut select = String::from(
            "<label for=\"account_id\">Organization</label><select id=\"account_id\" name=\"account_id\" required>",
        );
        let mut first = true;
        for o in &m.options {
            let server_host = url::Url::parse(&o.server)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_default();
            let text = match (&o.account_id, o.rejected) {
                (Some(_), false) => {
                    format!("{} ({}) — {} · {}", o.label, o.org, o.who, server_host)
                }
                (Some(_), true) => {
                    format!("{} ({}) — token rejected, paste a new one", o.label, o.org)
                }
                (None, _) => format!("{} ({}) — no token yet", o.label, o.org),
            };
            match (&o.account_id, o.rejected) {
                (Some(id), false) => {
                    select.push_str(&format!(
                        "<option value=\"{}\"{}>{}</option>",
                        esc(id),
                        if first { " selected" } else { "" },
                        esc(&text)
                    ));
                    first = false;
                }
                _ => select.push_str(&format!("<option disabled>{}</option>", esc(&text))),
            }
        }
        select.push_str("</select>");
        inner.push_str(&format!(
            "<form method=\"post\" action=\"/oauth/consent/{id}\" class=\"decision\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">{select}\
             <div class=\"buttons\"><button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">Deny</button>\
             <button type=\"submit\" name=\"decision\" value=\"allow\" class=\"primary\">Allow</button></div></form>",
            id = esc(&r.id),
            csrf = esc(r.csrf.expose()),
        ));
        if m.options.iter().any(|o| o.account_id.is_none()) {
            inner.push_str(
                "<p class=\"hint\">An organization marked “no token yet” needs its own token: paste a token for that organization below.</p>",
            );
        }
        inner.push_str(&token_form(m, false));
    }
    inner.push_str(&format!(
        "<p class=\"muted small\">Or decide from a terminal: <code>spor-companiond consent approve {}</code></p>",
        esc(&r.id)
    ));
    html(
        status,
        shell("Connect an assistant", &main_attrs, &inner),
        origin_of(&r.redirect_uri),
    )
}

/// The program that registered the client, as the OS told.
fn program_fact(r: &Requester) -> String {
    format!(
        "<dt>Program</dt><dd class=\"program\">{}</dd>",
        esc(&r.registered_by_text())
    )
}

/// Who listens where the code goes, after the redirect host.
fn listener_fact(r: &Requester) -> String {
    match r.listener_text() {
        Some(t) => format!(
            "<br><span class=\"muted small listener\">held by {}</span>",
            esc(&t)
        ),
        None => String::new(),
    }
}

fn requester_warnings(r: &Requester) -> String {
    r.warnings
        .iter()
        .map(|w| {
            format!(
                "<p class=\"warning\" role=\"alert\" data-warning=\"{}\">{}</p>",
                w.kind.as_str(),
                esc(&w.message)
            )
        })
        .collect()
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// `GET /oauth/assets/consent.js`
pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /oauth/assets/consent.css`
pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esc_neutralizes_markup() {
        assert_eq!(
            esc("<script>\"x\"&'"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;"
        );
    }
}
