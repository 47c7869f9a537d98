//! Enums stored as their wire names: a `TEXT` column holds exactly what the
//! type's `Display` writes and its `parse` reads, so replacing a string with
//! an enum needed no migration, and JSON shows the same name.

/// Implements `ToSql`, `FromSql` (an unknown name is a conversion error)
/// and `Serialize` for a type with `Display` and `fn parse(&str) -> Option<Self>`.
macro_rules! stored_as_text {
    ($t:ty) => {
        impl rusqlite::types::ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(rusqlite::types::ToSqlOutput::from(self.to_string()))
            }
        }

        impl rusqlite::types::FromSql for $t {
            fn column_result(
                v: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                let s = v.as_str()?;
                <$t>::parse(s).ok_or_else(|| {
                    rusqlite::types::FromSqlError::Other(
                        format!("unknown {} {s:?}", stringify!($t)).into(),
                    )
                })
            }
        }

        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}

pub(super) use stored_as_text;
