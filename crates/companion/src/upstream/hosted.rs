//! Hosted Spor's addresses: the one table that says where a hosted REST
//! server's MCP endpoint is. Hosted Spor splits its hosts (REST on `api.…`,
//! MCP on `mcp.…`), so `server + "/mcp"` is wrong there; a self-hosted
//! server serves both on one origin and keeps that default.

use serde::Serialize;

/// The REST base of hosted Spor (what `spor join` uses by default).
pub const HOSTED_REST: &str = "https://api.sporhq.io";
/// The MCP endpoint of hosted Spor.
pub const HOSTED_MCP: &str = "https://mcp.sporhq.io/mcp";

/// Names a stand-in to treat as hosted Spor, for tests and development:
/// `REST_URL,MCP_URL` (e.g. `http://127.0.0.1:9000,http://localhost:9000/mcp`).
/// It is offered first and mapped like the real one, which stays in the table.
pub const HOSTED_ENV: &str = "SPOR_COMPANION_HOSTED";

/// One hosted Spor deployment: its REST base and its MCP endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostedSpor {
    /// REST base URL, normalized (no trailing slash).
    pub rest: String,
    /// MCP endpoint.
    pub mcp: String,
}

/// The known hosted deployments: the one offered by default, and others
/// still mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedTable {
    offered: HostedSpor,
    others: Vec<HostedSpor>,
}

impl Default for HostedTable {
    fn default() -> Self {
        Self {
            offered: HostedSpor {
                rest: HOSTED_REST.into(),
                mcp: HOSTED_MCP.into(),
            },
            others: Vec::new(),
        }
    }
}

impl HostedTable {
    /// The table with `stand_in` (already normalized) offered instead; the
    /// deployment offered before stays mapped unless it has the same REST
    /// base.
    pub fn with_first(self, stand_in: HostedSpor) -> Self {
        let mut others: Vec<HostedSpor> = std::iter::once(self.offered)
            .chain(self.others)
            .filter(|e| e.rest != stand_in.rest)
            .collect();
        others.dedup();
        Self {
            offered: stand_in,
            others,
        }
    }

    /// The deployment offered when the person names no server.
    pub fn default_spor(&self) -> &HostedSpor {
        &self.offered
    }

    /// The MCP endpoint of `server` (a normalized REST base) if it is hosted.
    pub fn mcp_for(&self, server: &str) -> Option<&str> {
        std::iter::once(&self.offered)
            .chain(&self.others)
            .find(|e| e.rest == server)
            .map(|e| e.mcp.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosted_spor_maps_its_rest_base_to_its_own_mcp_host() {
        let t = HostedTable::default();
        assert_eq!(t.default_spor().rest, "https://api.sporhq.io");
        assert_eq!(
            t.mcp_for("https://api.sporhq.io"),
            Some("https://mcp.sporhq.io/mcp")
        );
        assert_eq!(t.mcp_for("https://spor.example.com"), None);
    }

    #[test]
    fn a_stand_in_is_offered_first_and_the_real_one_stays_mapped() {
        let t = HostedTable::default().with_first(HostedSpor {
            rest: "http://127.0.0.1:9000".into(),
            mcp: "http://localhost:9000/mcp".into(),
        });
        assert_eq!(t.default_spor().rest, "http://127.0.0.1:9000");
        assert_eq!(
            t.mcp_for("http://127.0.0.1:9000"),
            Some("http://localhost:9000/mcp")
        );
        assert_eq!(
            t.mcp_for("https://api.sporhq.io"),
            Some("https://mcp.sporhq.io/mcp")
        );
    }
}
