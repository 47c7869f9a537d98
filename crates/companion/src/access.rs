//! What one connected assistant may do with the account's tools, chosen by
//! the person at consent and changeable later: everything, only the tools
//! the upstream marks read-only, or a list the person picked. The gateway
//! enforces it (`gateway::policy`).

use std::collections::BTreeSet;

use serde::{Serialize, Serializer};

/// Longest tool name accepted in a chosen list.
const MAX_TOOL_NAME: usize = 128;
/// Most tools in a chosen list.
const MAX_TOOLS: usize = 256;

/// A grant's access to the account's tools.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Access {
    /// Every tool (what every grant had before access could be chosen).
    #[default]
    Full,
    /// Only tools the upstream annotates `readOnlyHint: true`; a tool not
    /// seen so annotated is refused.
    ReadOnly,
    /// Only these tools, by name.
    Tools(BTreeSet<String>),
}

/// Why an access description is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// Not one of the forms.
    #[error("access must be full, read-only or tools:NAME,NAME,… (got {0:?})")]
    Unknown(String),
    /// A chosen list with no tool.
    #[error("choose at least one tool (tools:NAME,NAME,…), or read-only")]
    NoTools,
    /// A tool name that cannot be one.
    #[error("{0:?} is not a tool name (1 to 128 visible characters)")]
    BadToolName(String),
    /// Too many tools.
    #[error("at most {MAX_TOOLS} tools can be chosen")]
    TooManyTools,
}

impl AccessError {
    /// A stable code for every wire.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unknown(_) => "unknown_access",
            Self::NoTools => "no_tools",
            Self::BadToolName(_) => "bad_tool_name",
            Self::TooManyTools => "too_many_tools",
        }
    }
}

fn tool_name(name: &str) -> Result<String, AccessError> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_TOOL_NAME
        && !name.chars().any(|c| c.is_control() || c.is_whitespace());
    if ok {
        Ok(name.to_string())
    } else {
        Err(AccessError::BadToolName(name.chars().take(60).collect()))
    }
}

impl Access {
    /// The chosen-tools access for `names`, each checked.
    pub fn tools<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, AccessError> {
        let set = names
            .into_iter()
            .map(|n| tool_name(n.trim()))
            .collect::<Result<BTreeSet<_>, _>>()?;
        if set.is_empty() {
            return Err(AccessError::NoTools);
        }
        if set.len() > MAX_TOOLS {
            return Err(AccessError::TooManyTools);
        }
        Ok(Self::Tools(set))
    }

    /// Parses what a person types: `full`, `read-only` (or `read_only`),
    /// `tools:NAME,NAME,…`.
    pub fn parse(text: &str) -> Result<Self, AccessError> {
        let text = text.trim();
        match text {
            "full" => Ok(Self::Full),
            "read-only" | "read_only" | "readonly" => Ok(Self::ReadOnly),
            _ => match text.strip_prefix("tools:") {
                Some(list) => Self::tools(list.split(',').filter(|n| !n.trim().is_empty())),
                None => Err(AccessError::Unknown(text.chars().take(60).collect())),
            },
        }
    }

    /// Its kind's name on every wire: `full`, `read_only`, `tools`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::ReadOnly => "read_only",
            Self::Tools(_) => "tools",
        }
    }

    /// In the words lists and errors use.
    pub fn describe(&self) -> String {
        match self {
            Self::Full => "full".into(),
            Self::ReadOnly => "read only".into(),
            Self::Tools(t) => {
                let names: Vec<&str> = t.iter().map(String::as_str).collect();
                format!("chosen tools: {}", names.join(", "))
            }
        }
    }

    /// The form kept in the database: `full`, `read_only`, or `tools:` and
    /// a JSON array of names.
    pub fn stored(&self) -> String {
        match self {
            Self::Tools(t) => format!(
                "tools:{}",
                serde_json::Value::from(t.iter().cloned().collect::<Vec<_>>())
            ),
            other => other.kind().to_string(),
        }
    }

    /// Reads [`Access::stored`]; `None` for anything else.
    pub fn from_stored(text: &str) -> Option<Self> {
        match text {
            "full" => Some(Self::Full),
            "read_only" => Some(Self::ReadOnly),
            _ => {
                let names: Vec<String> = serde_json::from_str(text.strip_prefix("tools:")?).ok()?;
                Self::tools(names.iter().map(String::as_str)).ok()
            }
        }
    }
}

impl rusqlite::types::ToSql for Access {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::from(self.stored()))
    }
}

impl rusqlite::types::FromSql for Access {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let s = v.as_str()?;
        Access::from_stored(s).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(format!("unknown access {s:?}").into())
        })
    }
}

/// JSON: `{"kind": "tools", "tools": ["get_node"]}` (`tools` only for that kind).
impl Serialize for Access {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("kind", self.kind())?;
        if let Self::Tools(t) = self {
            m.serialize_entry("tools", t)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_person_types_becomes_an_access_and_round_trips_through_the_database() {
        assert_eq!(Access::parse("full"), Ok(Access::Full));
        assert_eq!(Access::parse(" read-only "), Ok(Access::ReadOnly));
        let chosen = Access::parse("tools:get_node, search,get_node").expect("tools");
        assert_eq!(chosen.describe(), "chosen tools: get_node, search");
        for a in [Access::Full, Access::ReadOnly, chosen] {
            assert_eq!(Access::from_stored(&a.stored()), Some(a.clone()), "{a:?}");
        }
        assert_eq!(
            serde_json::to_value(Access::parse("tools:a").expect("a")).expect("json"),
            serde_json::json!({"kind": "tools", "tools": ["a"]})
        );
    }

    #[test]
    fn what_is_not_an_access_is_refused_with_its_reason() {
        assert_eq!(
            Access::parse("admin").map_err(|e| e.code()),
            Err("unknown_access")
        );
        assert_eq!(
            Access::parse("tools:").map_err(|e| e.code()),
            Err("no_tools")
        );
        assert_eq!(
            Access::parse("tools:a b").map_err(|e| e.code()),
            Err("bad_tool_name")
        );
        let many = format!(
            "tools:{}",
            (0..300)
                .map(|i| format!("t{i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(
            Access::parse(&many).map_err(|e| e.code()),
            Err("too_many_tools")
        );
        assert_eq!(Access::from_stored("tools:[]"), None);
        assert_eq!(Access::from_stored("everything"), None);
    }
}
