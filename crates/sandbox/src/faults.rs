//! Test-only fault injection, switched on by `SPOR_SANDBOX_FAULTS` at serve start.

use anyhow::bail;

/// Environment variable holding a comma-separated list of faults.
pub const FAULTS_ENV: &str = "SPOR_SANDBOX_FAULTS";

/// Which routes should misbehave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// `org-choices-502`: `/v1/me/org-choices` answers 502.
    pub org_choices_502: bool,
    /// `org-choices-404`: `/v1/me/org-choices` answers 404 (an older server).
    pub org_choices_404: bool,
    /// `mcp-401`: every `/mcp` request answers 401 `unauthorized`, whatever the token.
    pub mcp_401: bool,
    /// `mcp-500`: every `/mcp` POST answers 500 `internal`, whatever the token.
    pub mcp_500: bool,
}

/// Every fault name `parse` accepts.
pub const KNOWN: &str = "org-choices-502, org-choices-404, mcp-401, mcp-500";

impl Faults {
    /// Parses the comma list; unknown names are an error so typos are not silent.
    pub fn parse(spec: &str) -> anyhow::Result<Self> {
        let mut faults = Self::default();
        for name in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match name {
                "org-choices-502" => faults.org_choices_502 = true,
                "org-choices-404" => faults.org_choices_404 = true,
                "mcp-401" => faults.mcp_401 = true,
                "mcp-500" => faults.mcp_500 = true,
                other => bail!("unknown fault {other:?} in {FAULTS_ENV}; known: {KNOWN}"),
            }
        }
        Ok(faults)
    }

    /// Reads `SPOR_SANDBOX_FAULTS` (unset means no faults).
    pub fn from_env() -> anyhow::Result<Self> {
        match std::env::var(FAULTS_ENV) {
            Ok(spec) => Self::parse(&spec),
            Err(std::env::VarError::NotPresent) => Ok(Self::default()),
            Err(e) => bail!("{FAULTS_ENV}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Faults;

    #[test]
    fn parses_list() {
        let f = Faults::parse(" org-choices-502 ,,org-choices-404").ok();
        assert_eq!(
            f,
            Some(Faults {
                org_choices_502: true,
                org_choices_404: true,
                ..Faults::default()
            })
        );
        let f = Faults::parse("mcp-401,mcp-500").ok();
        assert_eq!(
            f,
            Some(Faults {
                mcp_401: true,
                mcp_500: true,
                ..Faults::default()
            })
        );
        assert_eq!(Faults::parse("").ok(), Some(Faults::default()));
        assert!(Faults::parse("nope").is_err());
    }
}
