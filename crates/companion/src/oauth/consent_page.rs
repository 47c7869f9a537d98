//! The consent page (headless mode) and the shown-error page. Plain HTML with
//! a same-origin stylesheet and script, so a strict CSP holds.

use std::path::Path;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::config::{default_data_dir, ConsentMode};
use crate::consent::requester::Requester;
use crate::consent::{OrgOption, PendingRequest, ToolChoices};
use crate::upstream::HostedSpor;

/// The name prefix of the page's tool checkboxes (`tool:NAME`).
pub const TOOL_BOX: &str = "tool:";

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
    /// The servers new tokens may be for (the first is the default); empty
    /// when none is known and the form offers hosted Spor or asks for one.
    pub known_servers: Vec<String>,
    /// Hosted Spor, offered while no server is known.
    pub hosted: HostedSpor,
    /// Who decides.
    pub mode: ConsentMode,
    /// How the person runs the daemon's CLI (see [`cli_command`]).
    pub cli: String,
    /// An error from the last form submission.
    pub error: Option<PageError>,
    /// Each usable account's tools, for the "Chosen tools" checklist.
    pub tools: Vec<ToolChoices>,
    /// The account whose tools the person asked to load: picked in the
    /// organization picker, with "Chosen tools" selected.
    pub loaded: Option<String>,
}

/// A refusal the page shows: its stable code (in `data-error`, for scripts
/// and tests) and the sentence the person reads.
#[derive(Debug, Clone)]
pub struct PageError {
    /// Stable code, e.g. `server_not_allowed`.
    pub code: &'static str,
    /// What the person reads.
    pub message: String,
}

/// `spor-companiond`, with `--data-dir` when the daemon does not use the
/// default one, so the command the page shows works as printed.
pub fn cli_command(data_dir: &Path) -> String {
    if default_data_dir().as_deref() == Some(data_dir) {
        return "spor-companiond".into();
    }
    format!(
        "spor-companiond --data-dir {}",
        shell_word(&data_dir.to_string_lossy())
    )
}

/// Quotes a word for a POSIX shell unless it is plainly safe.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%=,".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Wraps text from outside (names from a server, org labels) in a Unicode
/// isolate (FSI … PDI) with its own bidi controls removed, so it can neither
/// reorder what follows it nor close the isolate early. For places where
/// markup (`<bdi>`) is not allowed, such as `<option>` text.
fn isolated(s: &str) -> String {
    format!("\u{2068}{}\u{2069}", without_bidi_controls(s))
}

fn without_bidi_controls(s: &str) -> String {
    s.chars().filter(|c| !is_bidi_control(*c)).collect()
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
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

/// A server as the picker shows it: scheme, host and port, so look-alike
/// accounts on different servers differ visibly.
fn server_origin(server: &str) -> String {
    origin_of(server).unwrap_or_else(|| server.to_string())
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
    shown_error(status, None, message)
}

/// Like [`error_page`], naming the refusal's stable code in `data-error`.
pub fn refusal_page(status: StatusCode, code: &str, message: &str) -> Response {
    shown_error(status, Some(code), message)
}

fn shown_error(status: StatusCode, code: Option<&str>, message: &str) -> Response {
    let inner = format!(
        "<h1>Can't connect this assistant</h1><p class=\"error\" role=\"alert\"{}>{}</p>\
         <p class=\"muted\">You can close this tab.</p>",
        error_attr(code),
        esc(message)
    );
    html(status, shell("Can't connect", "", &inner), None)
}

fn error_attr(code: Option<&str>) -> String {
    code.map(|c| format!(" data-error=\"{}\"", esc(c)))
        .unwrap_or_default()
}

fn token_form(m: &PageModel<'_>, open: bool) -> String {
    let r = m.request;
    // A known server is not up to the form: the page is reachable by
    // whoever holds the request id, and the POST is checked the same way.
    let server_field = match m.known_servers.as_slice() {
        // Hosted Spor unless the person opens the self-hosted fields; a
        // `<details>` needs no script, so the choice works under the CSP.
        [] => format!(
            "<p class=\"muted server hosted\">Server: Hosted Spor <code>{hosted}</code></p>\
             <details class=\"own-server\"><summary>My organization runs its own Spor server</summary>\
             <label for=\"server_url\">Spor server URL</label>\
             <input id=\"server_url\" name=\"server_url\" type=\"url\" \
             placeholder=\"https://spor.example.com\" autocomplete=\"url\">\
             <p class=\"hint\">Leave it empty for hosted Spor.</p>\
             <label for=\"mcp_url\">MCP URL (advanced)</label>\
             <input id=\"mcp_url\" name=\"mcp_url\" type=\"url\" \
             placeholder=\"the server URL + /mcp\" autocomplete=\"off\">\
             <p class=\"hint\">Only if your server's MCP endpoint is not at its URL + <code>/mcp</code>.</p></details>",
            hosted = esc(&m.hosted.rest)
        ),
        [one] => format!(
            "<p class=\"muted server\">Server: <code>{}</code></p>",
            esc(one)
        ),
        several => {
            let options: String = several
                .iter()
                .map(|s| format!("<option value=\"{0}\">{0}</option>", esc(s)))
                .collect();
            format!(
                "<label for=\"server_url\">Spor server</label>\
                 <select id=\"server_url\" name=\"server_url\" required>{options}</select>"
            )
        }
    };
    let fields = format!(
        "<form method=\"post\" action=\"/oauth/consent/{id}/account\" class=\"token-form\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">{server_field}\
         <label for=\"pat\">Personal access token</label>\
         <input id=\"pat\" name=\"pat\" type=\"password\" required autocomplete=\"off\" spellcheck=\"false\" \
         placeholder=\"spor_pat_…\">\
         <p class=\"hint\">Create one in Spor under Settings → Access tokens. It is kept in this computer's \
         keychain and never shown to the assistant.</p>\
         <button type=\"submit\" class=\"secondary\">Add token</button>\
         <p class=\"hint wake\" role=\"status\" hidden>The first request after a quiet spell wakes your \
         organization's Spor graph; this can take up to a minute.</p></form>",
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

/// Whether anyone vouches for the client's name: the host serving its
/// metadata document, or nobody.
fn name_tag(verified_by: Option<&str>) -> String {
    match verified_by {
        Some(host) => format!(
            "<span class=\"tag verified\" id=\"consent-verified\" title=\"The assistant's name comes from a document served by {h}.\">verified by {h}</span>",
            h = esc(host)
        ),
        None => "<span class=\"tag\">name as stated by the app</span>".into(),
    }
}

/// The consent page for a pending request.
pub fn consent(status: StatusCode, m: &PageModel<'_>) -> Response {
    let r = m.request;
    // The name is the client's own claim: isolated, so bidi controls in it
    // cannot reorder the sentence around it.
    let mut inner = format!(
        "<h1>Connect an assistant</h1>\
         <p class=\"lead\"><strong class=\"client-name\"><bdi>{name}</bdi></strong> \
         {tag} wants to use your Spor account.</p>\
         <dl class=\"facts\">{program}<dt>Returns to</dt><dd><code>{host}</code>{listener}</dd>\
         <dt>Acts</dt><dd>On your team graph through Spor's tools, as you.</dd></dl>{warnings}",
        name = esc(&r.client_name),
        tag = name_tag(r.verified_by.as_deref()),
        host = esc(&r.redirect_host),
        program = program_fact(&r.requester),
        listener = listener_fact(&r.requester),
        warnings = requester_warnings(&r.requester),
    );
    if let Some(e) = &m.error {
        inner.push_str(&format!(
            "<p class=\"error\" role=\"alert\"{}>{}</p>",
            error_attr(Some(e.code)),
            esc(&e.message)
        ));
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
    match m.mode {
        ConsentMode::Native => {
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
        ConsentMode::Cli => {
            inner.push_str(&terminal_steps(m, &usable));
            return html(
                status,
                shell("Approve from a terminal", &main_attrs, &inner),
                origin_of(&r.redirect_uri),
            );
        }
        ConsentMode::Browser => {}
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
        let picked = m
            .loaded
            .as_deref()
            .filter(|l| usable.iter().any(|o| o.account_id.as_deref() == Some(*l)))
            .or_else(|| usable.first().and_then(|o| o.account_id.as_deref()));
        for o in &m.options {
            let text = option_text(o);
            match (&o.account_id, o.rejected) {
                (Some(id), false) => {
                    select.push_str(&format!(
                        "<option value=\"{}\"{}>{}</option>",
                        esc(id),
                        if Some(id.as_str()) == picked {
                            " selected"
                        } else {
                            ""
                        },
                        esc(&text)
                    ));
                }
                _ => select.push_str(&format!("<option disabled>{}</option>", esc(&text))),
            }
        }
        select.push_str("</select>");
        let access = access_choice(&m.tools, m.loaded.is_some());
        inner.push_str(&format!(
            "<form method=\"post\" action=\"/oauth/consent/{id}\" class=\"decision\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">{select}{access}\
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
        "<p class=\"muted small\">Or decide from a terminal: <code>{} consent approve {}</code></p>",
        esc(&m.cli),
        esc(&r.id)
    ));
    html(
        status,
        shell("Connect an assistant", &main_attrs, &inner),
        origin_of(&r.redirect_uri),
    )
}

/// The access choice: full (checked), read only, or chosen tools with a
/// checklist per account (the script shows the picked account's).
fn access_choice(tools: &[ToolChoices], choosing: bool) -> String {
    let (full, chosen) = if choosing {
        ("", " checked")
    } else {
        (" checked", "")
    };
    let mut out = format!(
        "<fieldset class=\"access\"><legend>Access</legend>\
         <label class=\"choice\"><input type=\"radio\" name=\"access\" value=\"full\"{full}> \
         <strong>Full</strong> — every tool, reading and writing, as you</label>\
         <label class=\"choice\"><input type=\"radio\" name=\"access\" value=\"read_only\"> \
         <strong>Read only</strong> — only tools the server marks read-only</label>\
         <label class=\"choice\"><input type=\"radio\" name=\"access\" value=\"tools\"{chosen}> \
         <strong>Chosen tools</strong> — only the ones ticked below</label>",
    );
    for list in tools {
        out.push_str(&format!(
            "<fieldset class=\"tools\" data-account=\"{id}\" data-pending=\"{pending}\"><legend>Tools of {org}</legend>",
            id = esc(&list.account_id),
            pending = list.pending,
            org = esc(&isolated(&list.org))
        ));
        if list.pending {
            out.push_str(&format!(
                "<p class=\"muted small\"><a class=\"load-tools\" href=\"?tools={}\">Load this organization's tools</a> \
                 (Spor Companion reads the list from the server only when you ask).</p>",
                esc(&list.account_id)
            ));
        }
        if let Some(e) = &list.error {
            out.push_str(&format!(
                "<p class=\"muted small\" data-error=\"tools_unavailable\">The tool list could not be read: {}. Choose Full or Read only, or reload the page.</p>",
                esc(e)
            ));
        }
        for t in &list.tools {
            let title = t
                .title
                .as_deref()
                .map(str::trim)
                .filter(|title| !title.is_empty() && *title != t.name);
            let label = match title {
                Some(title) => format!("{} <code>{}</code>", esc(&isolated(title)), esc(&t.name)),
                None => format!("<code>{}</code>", esc(&t.name)),
            };
            let tag = if t.read_only {
                "<span class=\"tag\">read only</span>"
            } else if t.destructive {
                "<span class=\"tag destructive\" title=\"The server says this tool may change or delete data.\">may change or delete data</span>"
            } else {
                "<span class=\"tag\">adds data</span>"
            };
            out.push_str(&format!(
                "<label class=\"tool\"><input type=\"checkbox\" name=\"{box_name}\"> {label} {tag}</label>",
                box_name = esc(&format!("{}{}", TOOL_BOX, t.name)),
            ));
        }
        out.push_str("</fieldset>");
    }
    out.push_str("</fieldset>");
    out
}

/// One organization as the picker lists it: names isolated, and the
/// server's full origin beside them.
fn option_text(o: &OrgOption) -> String {
    // The slug stays bare (scripts pick options by "(slug)"), but without
    // bidi controls it cannot reorder what follows.
    let name = format!("{} ({})", isolated(&o.label), without_bidi_controls(&o.org));
    let origin = server_origin(&o.server);
    match (&o.account_id, o.rejected) {
        (Some(_), false) => format!("{name} — {} · {origin}", isolated(&o.who)),
        (Some(_), true) => format!("{name} · {origin} — token rejected, paste a new one"),
        (None, _) => format!("{name} · {origin} — no token yet"),
    }
}

/// `--consent cli`: what to run, and a Deny button; no Allow and no token
/// form, since only the terminal approves. The page keeps polling, so the
/// tab follows the redirect once the command ran.
fn terminal_steps(m: &PageModel<'_>, usable: &[&OrgOption]) -> String {
    let r = m.request;
    let approve = format!("{} consent approve {}", m.cli, r.id);
    let mut out = String::from(
        "<h2>Approve from a terminal</h2>\
         <p>This Spor Companion takes approvals only from a terminal of the computer it runs on.</p>",
    );
    match usable {
        [] => {
            // With no server known, `account add` takes hosted Spor.
            let (server, own) = match m.known_servers.first() {
                Some(s) => (format!(" --server {}", shell_word(s)), ""),
                None => (
                    String::new(),
                    " For your organization's own Spor server, add <code>--server URL</code>.",
                ),
            };
            out.push_str(&format!(
                "<p>No Spor token is stored yet. Add yours first:</p>\
                 <pre class=\"command\"><code>printf %s \"$SPOR_PAT\" | {} account add{} --token-stdin</code></pre>\
                 <p class=\"hint\">Give it the same <code>--secret-store</code> as the running daemon, if you chose one.{own}</p>\
                 <p>then allow this request:</p><pre class=\"command\"><code>{}</code></pre>",
                esc(&m.cli),
                esc(&server),
                esc(&approve)
            ));
        }
        [_] => out.push_str(&format!(
            "<p>To allow it, run:</p><pre class=\"command\"><code>{}</code></pre>",
            esc(&approve)
        )),
        several => {
            out.push_str("<p>To allow it, run the line of the organization it should act in:</p><ul class=\"commands\">");
            for o in several {
                if let Some(id) = &o.account_id {
                    out.push_str(&format!(
                        "<li><span class=\"muted\">{}</span><pre class=\"command\"><code>{} --account {}</code></pre></li>",
                        esc(&option_text(o)),
                        esc(&approve),
                        esc(id)
                    ));
                }
            }
            out.push_str("</ul>");
        }
    }
    out.push_str(&format!(
        "<div class=\"waiting\" role=\"status\"><span class=\"spinner\" aria-hidden=\"true\"></span>\
         <p>This tab continues by itself once you approve.</p></div>\
         <form method=\"post\" action=\"/oauth/consent/{id}\" class=\"decision\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <div class=\"buttons\"><button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">Deny</button></div></form>",
        id = esc(&r.id),
        csrf = esc(r.csrf.expose()),
    ));
    out
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
            "<br><span class=\"muted small listener\">{}</span>",
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
    fn isolated_text_keeps_no_bidi_control_of_its_own() {
        assert_eq!(
            isolated("Ali\u{202E}ce\u{2069}"),
            "\u{2068}Alice\u{2069}",
            "an override or a stray PDI inside cannot leak out"
        );
    }

    #[test]
    fn shell_words_are_quoted_unless_plainly_safe() {
        assert_eq!(shell_word("/srv/spor-data"), "/srv/spor-data");
        assert_eq!(shell_word("/home/a b/it's"), "'/home/a b/it'\\''s'");
        assert_eq!(shell_word("$(rm -rf ~)"), "'$(rm -rf ~)'");
    }

    #[test]
    fn esc_neutralizes_markup() {
        assert_eq!(
            esc("<script>\"x\"&'"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;"
        );
    }
}
