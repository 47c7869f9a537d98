//! Who is asking, as the OS tells it rather than as the client claims: the
//! program that registered the client, and the one listening where the
//! authorization code will be sent. On loopback a redirect URI proves
//! nothing by itself, so what does not add up becomes a warning the person
//! reads before allowing.

use serde::{Deserialize, Serialize};

use crate::peer::{self, Listener, Program};

/// What the consent shows about the programs behind a request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Requester {
    /// The program that registered the client, when it was recorded.
    pub registered_by: Option<Program>,
    /// The redirect URI's loopback port, when it has one.
    pub redirect_port: Option<u16>,
    /// Who listens there (only for a loopback redirect).
    pub redirect_listener: Option<Listener>,
    /// The known host a client's metadata document names (e.g. "Claude
    /// Code"), whose program should then hold the redirect port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_app: Option<String>,
    /// What does not add up.
    pub warnings: Vec<Warning>,
}

/// Why a request deserves a second look.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// Nothing listens where the code would go.
    NobodyListens,
    /// Another OS user holds the redirect port.
    OtherUserListens,
    /// The redirect port is held by another program than the registering one.
    OtherProgramListens,
}

impl WarningKind {
    /// The name it has on every wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NobodyListens => "nobody_listens",
            Self::OtherUserListens => "other_user_listens",
            Self::OtherProgramListens => "other_program_listens",
        }
    }
}

/// One warning, with the sentence the person reads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Warning {
    /// What kind.
    pub kind: WarningKind,
    /// In words.
    pub message: String,
}

impl Requester {
    /// "unknown program" wherever the OS gave no answer, never a guess.
    pub fn registered_by_text(&self) -> String {
        match &self.registered_by {
            Some(p) => p.to_string(),
            None => "unknown program".to_string(),
        }
    }

    /// Who holds the redirect port, as a phrase ("held by …", "nobody
    /// listens on port …"), when the redirect is on loopback.
    pub fn listener_text(&self) -> Option<String> {
        let port = self.redirect_port?;
        Some(match self.redirect_listener.as_ref()? {
            Listener::Program(p) => format!("held by {p}"),
            Listener::Nobody => format!("nobody listens on port {port}"),
            Listener::OtherUser { uid } => {
                format!("held by another user of this computer (uid {uid})")
            }
            Listener::Unknown => "held by an unknown program".to_string(),
        })
    }
}

/// The loopback port of a redirect URI (`http://127.0.0.1:PORT/…`,
/// `localhost`, `[::1]`), if it is one.
fn loopback_port(redirect_uri: &str) -> Option<u16> {
    let url = url::Url::parse(redirect_uri).ok()?;
    let host = url.host()?;
    crate::host::is_loopback_name(&host)
        .then(|| url.port_or_known_default())
        .flatten()
}

/// Looks at who listens on the redirect URI's port and compares it with
/// the registering program (a registered client) or with the known host
/// its metadata document names (`expected_app`, a document client). Reads
/// the OS's tables off the runtime.
pub async fn inspect(
    registered_by: Option<Program>,
    expected_app: Option<String>,
    redirect_uri: &str,
) -> Requester {
    let redirect_port = loopback_port(redirect_uri);
    let redirect_listener = match redirect_port {
        Some(port) => tokio::task::spawn_blocking(move || peer::listener(port))
            .await
            .ok(),
        None => None,
    };
    let mut r = Requester {
        registered_by,
        redirect_port,
        redirect_listener,
        expected_app,
        warnings: Vec::new(),
    };
    r.warnings = warnings(&r);
    r
}

fn warnings(r: &Requester) -> Vec<Warning> {
    let (Some(port), Some(listener)) = (r.redirect_port, &r.redirect_listener) else {
        return Vec::new();
    };
    let warning = |kind, message: String| vec![Warning { kind, message }];
    match listener {
        Listener::Nobody => warning(
            WarningKind::NobodyListens,
            format!("No program is listening on port {port}, where the authorization would be sent. Another program could take the port and receive it."),
        ),
        Listener::OtherUser { uid } => warning(
            WarningKind::OtherUserListens,
            format!("Port {port}, where the authorization would be sent, belongs to another user of this computer (uid {uid})."),
        ),
        Listener::Program(holder) if r.expected_app.is_some() => match &r.expected_app {
            Some(expected) if holder.app.as_deref() != Some(expected.as_str()) => warning(
                WarningKind::OtherProgramListens,
                format!("Port {port}, where the authorization would be sent, is held by {holder}, not by {expected}, which this assistant's metadata document names."),
            ),
            _ => Vec::new(),
        },
        Listener::Program(holder) => match (&r.registered_by, &holder.exe) {
            (Some(Program { exe: Some(registrant), .. }), Some(exe)) if registrant != exe => warning(
                WarningKind::OtherProgramListens,
                format!("Port {port}, where the authorization would be sent, is held by {holder}, not by the program that registered this assistant ({registrant})."),
            ),
            _ => Vec::new(),
        },
        Listener::Unknown => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(pid: u32, exe: &str) -> Program {
        Program {
            pid,
            exe: Some(exe.into()),
            app: None,
        }
    }

    fn with(registered_by: Option<Program>, listener: Listener) -> Requester {
        let mut r = Requester {
            registered_by,
            redirect_port: Some(7768),
            redirect_listener: Some(listener),
            expected_app: None,
            warnings: Vec::new(),
        };
        r.warnings = warnings(&r);
        r
    }

    fn kinds(r: &Requester) -> Vec<WarningKind> {
        r.warnings.iter().map(|w| w.kind).collect()
    }

    #[test]
    fn only_loopback_redirects_have_a_port() {
        assert_eq!(loopback_port("http://127.0.0.1:7768/callback"), Some(7768));
        assert_eq!(loopback_port("http://localhost:33418/cb"), Some(33418));
        assert_eq!(loopback_port("http://[::1]:9/cb"), Some(9));
        assert_eq!(loopback_port("http://127.0.0.1/cb"), Some(80));
        assert_eq!(loopback_port("https://claude.ai/api/callback"), None);
        assert_eq!(loopback_port("com.example.app:/cb"), None);
    }

    #[test]
    fn what_does_not_add_up_is_a_warning() {
        let node = program(10, "/usr/bin/node");
        assert!(with(
            Some(node.clone()),
            Listener::Program(program(10, "/usr/bin/node"))
        )
        .warnings
        .is_empty());
        // The same program restarted (another pid) is still the same program.
        assert!(with(
            Some(node.clone()),
            Listener::Program(program(11, "/usr/bin/node"))
        )
        .warnings
        .is_empty());
        assert_eq!(
            kinds(&with(
                Some(program(5, "/usr/bin/python3")),
                Listener::Program(program(9, "/usr/bin/spor-companiond"))
            )),
            [WarningKind::OtherProgramListens]
        );
        assert_eq!(
            kinds(&with(Some(node.clone()), Listener::Nobody)),
            [WarningKind::NobodyListens]
        );
        assert_eq!(
            kinds(&with(Some(node), Listener::OtherUser { uid: 1001 })),
            [WarningKind::OtherUserListens]
        );
        // No answer from the OS is said as such, not turned into a warning.
        let unknown = with(None, Listener::Unknown);
        assert!(unknown.warnings.is_empty());
        assert_eq!(unknown.registered_by_text(), "unknown program");
        assert_eq!(
            unknown.listener_text().as_deref(),
            Some("held by an unknown program")
        );
    }
}
