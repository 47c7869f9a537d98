//! A wrapper for secrets (PATs, tokens, codes, verifiers) that cannot leak
//! through `Debug`, `Display` or serialization by accident, and the one way
//! secrets are compared.

use std::fmt;

use subtle::ConstantTimeEq;

/// A secret value. `Debug` prints `<redacted>`; there is no `Display` and no
/// `Serialize`, so the only way out is the explicit [`Sensitive::expose`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Sensitive<T>(T);

impl<T> Sensitive<T> {
    /// Wraps a secret.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// Borrows the secret; every call site is a place a secret leaves the wrapper.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the secret.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<T> From<T> for Sensitive<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

/// A capability (a consent request id, a CSRF token) shortened for a debug
/// log line: its first six characters and "…", enough to follow one
/// request through the log, far too few to use or guess the rest from.
#[derive(Clone, Copy)]
pub struct Abbreviated<'a>(pub &'a str);

impl fmt::Display for Abbreviated<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = self
            .0
            .char_indices()
            .nth(6)
            .map_or(self.0.len(), |(i, _)| i);
        write!(f, "{}…", &self.0[..end])
    }
}

impl fmt::Debug for Abbreviated<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Compares two strings in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Sensitive::new("spor_pat_abc".to_string());
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(&s)), "Some(<redacted>)");
        assert_eq!(s.expose(), "spor_pat_abc");
    }

    #[test]
    fn abbreviated_keeps_six_characters() {
        assert_eq!(Abbreviated("Xy9_-aBcDeFgHiJk").to_string(), "Xy9_-a…");
        assert_eq!(format!("{:?}", Abbreviated("Xy9_-aBcDeFgHiJk")), "Xy9_-a…");
        assert_eq!(Abbreviated("abc").to_string(), "abc…");
        assert_eq!(Abbreviated("ééééééé").to_string(), "éééééé…");
    }

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}
