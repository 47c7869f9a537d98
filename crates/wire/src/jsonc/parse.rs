//! The parser: JSON or JSONC text to a tree of byte spans (objects,
//! members, values, colons and commas), so that edits can be splices of the
//! original text and every other byte stays as it was. Errors carry the
//! 1-based line and character column a person can find in an editor.

use std::ops::Range;

use super::{split_bom, Syntax, SyntaxError, Tree};

/// A value and the bytes it spans.
pub(super) struct Node {
    pub(super) span: Range<usize>,
    pub(super) kind: Kind,
}

/// What a value is; only what the editor compares or edits is decoded.
pub(super) enum Kind {
    Object(Vec<Member>),
    Array(Vec<Item>),
    Str(String),
    /// Numbers, booleans and null: never compared, never edited.
    Other,
}

/// One `"key": value` of an object.
pub(super) struct Member {
    /// The decoded name.
    pub(super) key: String,
    /// The name as written, quotes included.
    pub(super) key_span: Range<usize>,
    /// The `:` (kept so the tree accounts for every token; see [`emit`]).
    pub(super) colon: usize,
    pub(super) value: Node,
    /// The comma after this member, if any (the last one's is a trailing comma).
    pub(super) comma: Option<usize>,
}

/// One value of an array and the comma after it, if any.
pub(super) struct Item {
    pub(super) value: Node,
    pub(super) comma: Option<usize>,
}

/// The members of an object node; none for anything else.
pub(super) fn object_members(node: &Node) -> &[Member] {
    match &node.kind {
        Kind::Object(members) => members,
        _ => &[],
    }
}

/// Whether a parsed value is exactly `want` (same keys, no extra ones).
pub(super) fn matches(node: &Node, want: &Tree) -> bool {
    match (&node.kind, want) {
        (Kind::Str(s), Tree::Str(w)) => s == w,
        (Kind::Array(items), Tree::List(w)) => {
            items.len() == w.len()
                && items
                    .iter()
                    .zip(w)
                    .all(|(i, w)| matches!(&i.value.kind, Kind::Str(s) if s == w))
        }
        (Kind::Object(members), Tree::Object(fields)) => {
            members.len() == fields.len()
                && fields.iter().all(|(k, v)| {
                    members.iter().filter(|m| &m.key == k).count() == 1
                        && members.iter().any(|m| &m.key == k && matches(&m.value, v))
                })
        }
        _ => false,
    }
}

/// Deeper nesting is refused rather than risking the stack.
const MAX_DEPTH: usize = 256;

struct Parser<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    syntax: Syntax,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn error(&self, at: usize, message: impl Into<String>) -> SyntaxError {
        let (line, column) = line_column(self.src, at);
        SyntaxError {
            line,
            column,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) -> Result<(), SyntaxError> {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' => self.pos += 1,
                b'/' if matches!(self.bytes.get(self.pos + 1), Some(b'/' | b'*')) => {
                    if self.syntax == Syntax::Json {
                        return Err(self.error(self.pos, "comments are not allowed in JSON"));
                    }
                    if self.bytes[self.pos + 1] == b'/' {
                        while !matches!(self.peek(), None | Some(b'\n')) {
                            self.pos += 1;
                        }
                    } else {
                        let start = self.pos;
                        match self.src[self.pos + 2..].find("*/") {
                            Some(end) => self.pos += 2 + end + 2,
                            None => return Err(self.error(start, "unterminated /* comment")),
                        }
                    }
                }
                _ => break,
            }
        }
        Ok(())
    }

    fn value(&mut self) -> Result<Node, SyntaxError> {
        self.skip_ws()?;
        let start = self.pos;
        let kind = match self.peek() {
            None => return Err(self.error(start, "unexpected end of file, expected a value")),
            Some(b'{') => return self.object(),
            Some(b'[') => return self.array(),
            Some(b'"') => Kind::Str(self.string()?),
            Some(b'-' | b'0'..=b'9') => {
                self.number()?;
                Kind::Other
            }
            Some(b't' | b'f' | b'n') => {
                let rest = &self.src[start..];
                let word = ["true", "false", "null"]
                    .into_iter()
                    .find(|w| rest.starts_with(w))
                    .ok_or_else(|| self.unexpected(start, "a value"))?;
                self.pos += word.len();
                Kind::Other
            }
            Some(_) => return Err(self.unexpected(start, "a value")),
        };
        Ok(Node {
            span: start..self.pos,
            kind,
        })
    }

    fn unexpected(&self, at: usize, expected: &str) -> SyntaxError {
        match self.src.get(at..).and_then(|s| s.chars().next()) {
            None => self.error(at, format!("unexpected end of file, expected {expected}")),
            Some(c) => self.error(at, format!("unexpected {c:?}, expected {expected}")),
        }
    }

    fn enter(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(self.pos, "nested too deeply"));
        }
        Ok(())
    }

    fn object(&mut self) -> Result<Node, SyntaxError> {
        self.enter()?;
        let start = self.pos;
        self.pos += 1;
        let mut members: Vec<Member> = Vec::new();
        loop {
            self.skip_ws()?;
            match self.peek() {
                Some(b'}') => {
                    if let Some(comma) = members.last().and_then(|m| m.comma) {
                        if self.syntax == Syntax::Json {
                            return Err(self.error(comma, "trailing comma is not allowed in JSON"));
                        }
                    }
                    self.pos += 1;
                    break;
                }
                Some(b'"') if members.last().is_none_or(|m| m.comma.is_some()) => {}
                _ if members.last().is_some_and(|m| m.comma.is_none()) => {
                    return Err(self.unexpected(self.pos, "',' or '}' after an object member"));
                }
                _ => return Err(self.unexpected(self.pos, "a member name in double quotes")),
            }
            let key_start = self.pos;
            let key = self.string()?;
            let key_span = key_start..self.pos;
            self.skip_ws()?;
            if self.peek() != Some(b':') {
                return Err(self.unexpected(self.pos, "':' after the member name"));
            }
            let colon = self.pos;
            self.pos += 1;
            let value = self.value()?;
            self.skip_ws()?;
            let comma = if self.peek() == Some(b',') {
                self.pos += 1;
                Some(self.pos - 1)
            } else {
                None
            };
            members.push(Member {
                key,
                key_span,
                colon,
                value,
                comma,
            });
        }
        self.depth -= 1;
        Ok(Node {
            span: start..self.pos,
            kind: Kind::Object(members),
        })
    }

    fn array(&mut self) -> Result<Node, SyntaxError> {
        self.enter()?;
        let start = self.pos;
        self.pos += 1;
        let mut items = Vec::new();
        let mut comma: Option<usize> = None;
        loop {
            self.skip_ws()?;
            if self.peek() == Some(b']') {
                if let (Some(at), Syntax::Json) = (comma, self.syntax) {
                    return Err(self.error(at, "trailing comma is not allowed in JSON"));
                }
                self.pos += 1;
                break;
            }
            if !items.is_empty() && comma.is_none() {
                return Err(self.unexpected(self.pos, "',' or ']' after an array item"));
            }
            let value = self.value()?;
            self.skip_ws()?;
            comma = if self.peek() == Some(b',') {
                self.pos += 1;
                Some(self.pos - 1)
            } else {
                None
            };
            items.push(Item { value, comma });
        }
        self.depth -= 1;
        Ok(Node {
            span: start..self.pos,
            kind: Kind::Array(items),
        })
    }

    /// A string literal at `pos` (which holds `"`), decoded.
    fn string(&mut self) -> Result<String, SyntaxError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        let mut run = self.pos;
        loop {
            match self.peek() {
                None => return Err(self.error(start, "unterminated string")),
                Some(b'"') => {
                    out.push_str(&self.src[run..self.pos]);
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    out.push_str(&self.src[run..self.pos]);
                    let at = self.pos;
                    self.pos += 1;
                    let c = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => self.unicode_escape(at)?,
                        _ => return Err(self.error(at, "invalid escape in a string")),
                    };
                    self.pos += 1;
                    out.push(c);
                    run = self.pos;
                }
                Some(b) if b < 0x20 => {
                    return Err(self.error(self.pos, "control character in a string"))
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    /// `pos` is at the `u` of `\uXXXX`; leaves `pos` on the last hex digit.
    fn unicode_escape(&mut self, at: usize) -> Result<char, SyntaxError> {
        let high = self.hex4(at)?;
        let code = if (0xD800..0xDC00).contains(&high) {
            if self.bytes.get(self.pos + 1..self.pos + 3) != Some(b"\\u") {
                return Err(self.error(at, "invalid \\u escape (lone surrogate)"));
            }
            self.pos += 2;
            let low = self.hex4(at)?;
            if !(0xDC00..0xE000).contains(&low) {
                return Err(self.error(at, "invalid \\u escape (lone surrogate)"));
            }
            0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
        } else {
            high
        };
        char::from_u32(code).ok_or_else(|| self.error(at, "invalid \\u escape (lone surrogate)"))
    }

    /// Reads the 4 hex digits after the `u` at `pos`; leaves `pos` on the last.
    fn hex4(&mut self, at: usize) -> Result<u32, SyntaxError> {
        let digits = self
            .src
            .get(self.pos + 1..self.pos + 5)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.error(at, "invalid \\u escape"))?;
        let value =
            u32::from_str_radix(digits, 16).map_err(|_| self.error(at, "invalid \\u escape"))?;
        self.pos += 4;
        Ok(value)
    }

    fn number(&mut self) -> Result<(), SyntaxError> {
        let start = self.pos;
        let bad = |p: &Self| p.error(start, "invalid number");
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(bad(self)),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(bad(self));
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(bad(self));
            }
            self.digits();
        }
        Ok(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
    }
}

/// 1-based line and character column of byte `at`.
pub(super) fn line_column(src: &str, at: usize) -> (usize, usize) {
    let at = at.min(src.len());
    let before = src.get(..at).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before
        .get(line_start..)
        .map_or(1, |s| s.chars().count() + 1);
    (line, column)
}

/// Parses a whole document: one object at the top level (after an optional
/// byte-order mark), nothing but whitespace and comments after it.
pub(super) fn parse_root(src: &str, syntax: Syntax) -> Result<Node, SyntaxError> {
    let mut p = Parser {
        src,
        bytes: src.as_bytes(),
        pos: split_bom(src).0.len(),
        syntax,
        depth: 0,
    };
    let root = p.value()?;
    p.skip_ws()?;
    if p.pos != src.len() {
        return Err(p.error(p.pos, "unexpected text after the end of the JSON value"));
    }
    if !matches!(root.kind, Kind::Object(_)) {
        return Err(p.error(root.span.start, "the top level is not a JSON object"));
    }
    Ok(root)
}

/// `src` rebuilt from `root`: punctuation written from the tree, strings'
/// quotes written from the tree around the bytes between them, numbers and
/// words copied, the gaps (whitespace, comments, a byte-order mark) copied.
/// Equal to `src` exactly when every span the editor splices at is right,
/// which is what the unit tests and the fuzz target hold it to.
pub(super) fn emit(src: &str, root: &Node) -> String {
    let mut e = Emitter {
        src,
        out: String::with_capacity(src.len()),
        at: 0,
    };
    e.node(root);
    e.gap(src.len());
    e.out
}

struct Emitter<'a> {
    src: &'a str,
    out: String,
    /// How far `src` has been written.
    at: usize,
}

impl Emitter<'_> {
    /// Copies the text between the last token and `to`. A span that runs
    /// backwards or off a character boundary copies nothing, so the result
    /// differs from the source instead of panicking.
    fn gap(&mut self, to: usize) {
        if let Some(text) = self.src.get(self.at..to) {
            self.out.push_str(text);
        }
        self.at = self.at.max(to);
    }

    fn token(&mut self, at: usize, text: &str) {
        self.gap(at);
        self.out.push_str(text);
        self.at = self.at.max(at + text.len());
    }

    /// A string literal: the quotes from the tree, the inside from `src`.
    fn string(&mut self, span: &Range<usize>) {
        let inner = span.start + 1..span.end.saturating_sub(1);
        self.token(span.start, "\"");
        let text = self.src.get(inner.clone()).unwrap_or("\u{fffd}");
        self.token(inner.start, text);
        self.token(inner.end, "\"");
    }

    fn node(&mut self, node: &Node) {
        let close = node.span.end.saturating_sub(1);
        match &node.kind {
            Kind::Object(members) => {
                self.token(node.span.start, "{");
                for m in members {
                    self.string(&m.key_span);
                    self.token(m.colon, ":");
                    self.node(&m.value);
                    if let Some(c) = m.comma {
                        self.token(c, ",");
                    }
                }
                self.token(close, "}");
            }
            Kind::Array(items) => {
                self.token(node.span.start, "[");
                for item in items {
                    self.node(&item.value);
                    if let Some(c) = item.comma {
                        self.token(c, ",");
                    }
                }
                self.token(close, "]");
            }
            Kind::Str(_) => self.string(&node.span),
            Kind::Other => {
                let text = self.src.get(node.span.clone()).unwrap_or("\u{fffd}");
                self.token(node.span.start, text);
            }
        }
    }
}
