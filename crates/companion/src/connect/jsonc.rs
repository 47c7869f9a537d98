//! A small format-preserving editor for JSON and JSONC (VS Code's flavour:
//! `//` and `/* */` comments, trailing commas). The parser records the byte
//! spans of objects, members, values and commas; every edit is a splice of
//! those spans, so comments, spacing, key order, line endings and every other
//! byte of a person's config survive untouched.
//!
//! Editing rules, chosen so that adding then removing our member gives back
//! the original bytes:
//! - a member is added after the last member of its object, on its own line
//!   with the indentation the object already uses (one-line objects get a
//!   one-line member); a trailing comma after the last member is kept and
//!   our member gets one too;
//! - removing a member deletes it, the line break before it and the comma
//!   that was added for it; an object left with only whitespace inside
//!   becomes `{}`.

use std::ops::Range;

/// Which flavour a file is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// Strict JSON (RFC 8259).
    Json,
    /// JSON with comments and trailing commas.
    Jsonc,
}

/// Why a file cannot be edited, and where (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// A JSON value made of strings, string lists and objects, kept in the order
/// it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tree {
    /// A string.
    Str(String),
    /// An array of strings.
    List(Vec<String>),
    /// An object, members in writing order.
    Object(Vec<(String, Tree)>),
}

/// What `upsert` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upsert {
    /// The member already holds exactly this value: nothing to write.
    Unchanged,
    /// The member was added; the new text.
    Inserted(String),
    /// The member existed with another value, which was replaced; the new text.
    Replaced(String),
}

/// What the file holds under `container.key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// No such member.
    Absent,
    /// Exactly the given value.
    Same,
    /// Something else.
    Different,
}

/// Puts `value` at `container.key` in `src`, creating the container when
/// missing. Empty (whitespace-only) text becomes a new 2-space document.
pub fn upsert(
    src: &str,
    syntax: Syntax,
    container: &str,
    key: &str,
    value: &Tree,
) -> Result<Upsert, SyntaxError> {
    let (bom, body) = split_bom(src);
    if body.trim().is_empty() {
        let style = Style::default();
        let doc = Tree::Object(vec![(
            container.to_string(),
            Tree::Object(vec![(key.to_string(), value.clone())]),
        )]);
        return Ok(Upsert::Inserted(format!(
            "{bom}{}\n",
            style.render(&doc, Some(""))
        )));
    }
    let doc = Doc::parse(src, syntax)?;
    let found = doc.locate(container, key)?;
    let mut edits = Vec::new();
    let replaced = match (found.container, found.member) {
        (Some(c), Some(m)) => {
            let member = &object_members(&c.value)[m];
            if matches(&member.value, value) {
                return Ok(Upsert::Unchanged);
            }
            let span = member.value.span.clone();
            let layout = if src[span.clone()].contains('\n') {
                Some(doc.indent_of_member(member, &c.value))
            } else {
                None
            };
            edits.push((span, doc.style.render(value, layout.as_deref())));
            true
        }
        (Some(c), None) => {
            let item = (key.to_string(), value.clone());
            doc.insert_member(&c.value, Some(&doc.root), &item, &mut edits);
            false
        }
        (None, _) => {
            let item = (
                container.to_string(),
                Tree::Object(vec![(key.to_string(), value.clone())]),
            );
            doc.insert_member(&doc.root, None, &item, &mut edits);
            false
        }
    };
    let text = apply(src, edits);
    Ok(if replaced {
        Upsert::Replaced(text)
    } else {
        Upsert::Inserted(text)
    })
}

/// Removes `container.key` from `src` (and the container when that leaves
/// it empty); `None` when there is nothing to remove.
pub fn remove(
    src: &str,
    syntax: Syntax,
    container: &str,
    key: &str,
) -> Result<Option<String>, SyntaxError> {
    if split_bom(src).1.trim().is_empty() {
        return Ok(None);
    }
    let doc = Doc::parse(src, syntax)?;
    let found = doc.locate(container, key)?;
    let (Some(c), Some(m)) = (found.container, found.member) else {
        return Ok(None);
    };
    let mut edits = Vec::new();
    if object_members(&c.value).len() == 1 {
        let index = found.container_index.unwrap_or_default();
        doc.remove_member(&doc.root, index, &mut edits);
    } else {
        doc.remove_member(&c.value, m, &mut edits);
    }
    Ok(Some(apply(src, edits)))
}

/// Whether `container.key` in `src` holds `value`.
pub fn lookup(
    src: &str,
    syntax: Syntax,
    container: &str,
    key: &str,
    value: &Tree,
) -> Result<Lookup, SyntaxError> {
    if split_bom(src).1.trim().is_empty() {
        return Ok(Lookup::Absent);
    }
    let doc = Doc::parse(src, syntax)?;
    let found = doc.locate(container, key)?;
    Ok(match (found.container, found.member) {
        (Some(c), Some(m)) if matches(&object_members(&c.value)[m].value, value) => Lookup::Same,
        (Some(_), Some(_)) => Lookup::Different,
        _ => Lookup::Absent,
    })
}

/// `value` as a member text `"key": value` for showing to a person
/// (2-space indentation, starting at column 0).
pub fn member_text(key: &str, value: &Tree) -> String {
    let style = Style::default();
    format!(
        "{}{}{}",
        json_string(key),
        style.colon,
        style.render(value, Some(""))
    )
}

// ---------------------------------------------------------------- syntax tree

struct Node {
    span: Range<usize>,
    kind: Kind,
}

enum Kind {
    Object(Vec<Member>),
    Array(Vec<Node>),
    Str(String),
    /// Numbers, booleans and null: never compared, never edited.
    Other,
}

struct Member {
    key: String,
    key_span: Range<usize>,
    value: Node,
    /// The comma after this member, if any (the last one's is a trailing comma).
    comma: Option<usize>,
}

fn object_members(node: &Node) -> &[Member] {
    match &node.kind {
        Kind::Object(members) => members,
        _ => &[],
    }
}

/// Whether a parsed value is exactly `want` (same keys, no extra ones).
fn matches(node: &Node, want: &Tree) -> bool {
    match (&node.kind, want) {
        (Kind::Str(s), Tree::Str(w)) => s == w,
        (Kind::Array(items), Tree::List(w)) => {
            items.len() == w.len()
                && items
                    .iter()
                    .zip(w)
                    .all(|(i, w)| matches!(&i.kind, Kind::Str(s) if s == w))
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
            items.push(self.value()?);
            self.skip_ws()?;
            comma = if self.peek() == Some(b',') {
                self.pos += 1;
                Some(self.pos - 1)
            } else {
                None
            };
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
fn line_column(src: &str, at: usize) -> (usize, usize) {
    let at = at.min(src.len());
    let before = src.get(..at).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before
        .get(line_start..)
        .map_or(1, |s| s.chars().count() + 1);
    (line, column)
}

fn split_bom(src: &str) -> (&str, &str) {
    match src.strip_prefix('\u{feff}') {
        Some(rest) => ("\u{feff}", rest),
        None => ("", src),
    }
}

// ---------------------------------------------------------------- the document

/// How the file writes things, so what we add looks like the rest.
struct Style {
    /// One indentation step.
    unit: String,
    /// Line break.
    newline: &'static str,
    /// Between a member name and its value.
    colon: &'static str,
    /// Between items on one line.
    comma: &'static str,
}

impl Default for Style {
    fn default() -> Self {
        Self {
            unit: "  ".into(),
            newline: "\n",
            colon: ": ",
            comma: ", ",
        }
    }
}

impl Style {
    /// `tree` as text: objects one member a line at `indent` (`Some`), or all
    /// on one line (`None`); string lists always on one line.
    fn render(&self, tree: &Tree, indent: Option<&str>) -> String {
        match tree {
            Tree::Str(s) => json_string(s),
            Tree::List(items) => {
                let items: Vec<String> = items.iter().map(|s| json_string(s)).collect();
                format!("[{}]", items.join(self.comma))
            }
            Tree::Object(fields) if fields.is_empty() => "{}".into(),
            Tree::Object(fields) => match indent {
                None => {
                    let members: Vec<String> = fields
                        .iter()
                        .map(|(k, v)| {
                            format!("{}{}{}", json_string(k), self.colon, self.render(v, None))
                        })
                        .collect();
                    format!("{{{}}}", members.join(self.comma))
                }
                Some(indent) => {
                    let inner = format!("{indent}{}", self.unit);
                    let members: Vec<String> = fields
                        .iter()
                        .map(|(k, v)| {
                            format!(
                                "{}{inner}{}{}{}",
                                self.newline,
                                json_string(k),
                                self.colon,
                                self.render(v, Some(&inner))
                            )
                        })
                        .collect();
                    format!("{{{}{}{indent}}}", members.join(","), self.newline)
                }
            },
        }
    }
}

fn json_string(s: &str) -> String {
    // Serializing a str cannot fail; the fallback only keeps this panic-free.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

struct Doc<'a> {
    src: &'a str,
    root: Node,
    style: Style,
}

/// Where the container and our member are, by index.
struct Found<'d> {
    container: Option<&'d Member>,
    container_index: Option<usize>,
    member: Option<usize>,
}

type Edit = (Range<usize>, String);

fn apply(src: &str, mut edits: Vec<Edit>) -> String {
    // Later splices first, so earlier offsets stay valid.
    edits.sort_by_key(|e| std::cmp::Reverse(e.0.start));
    let mut out = src.to_string();
    for (range, text) in edits {
        out.replace_range(range, &text);
    }
    out
}

impl<'a> Doc<'a> {
    fn parse(src: &'a str, syntax: Syntax) -> Result<Self, SyntaxError> {
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
        let style = Style {
            unit: detect_unit(src, &root).unwrap_or_else(|| "  ".into()),
            newline: if src.contains("\r\n") { "\r\n" } else { "\n" },
            ..detect_separators(src, &root)
        };
        Ok(Self { src, root, style })
    }

    fn error(&self, at: usize, message: String) -> SyntaxError {
        let (line, column) = line_column(self.src, at);
        SyntaxError {
            line,
            column,
            message,
        }
    }

    fn locate(&self, container: &str, key: &str) -> Result<Found<'_>, SyntaxError> {
        let members = object_members(&self.root);
        let mut found = Found {
            container: None,
            container_index: None,
            member: None,
        };
        for (i, m) in members
            .iter()
            .enumerate()
            .filter(|(_, m)| m.key == container)
        {
            if found.container.is_some() {
                return Err(self.error(
                    m.key_span.start,
                    format!("{} appears twice", json_string(container)),
                ));
            }
            if !matches!(m.value.kind, Kind::Object(_)) {
                return Err(self.error(
                    m.value.span.start,
                    format!("{} is not an object", json_string(container)),
                ));
            }
            found.container = Some(m);
            found.container_index = Some(i);
        }
        if let Some(c) = found.container {
            for (i, m) in object_members(&c.value).iter().enumerate() {
                if m.key != key {
                    continue;
                }
                if found.member.is_some() {
                    return Err(self.error(
                        m.key_span.start,
                        format!(
                            "{} appears twice in {}",
                            json_string(key),
                            json_string(container)
                        ),
                    ));
                }
                found.member = Some(i);
            }
        }
        Ok(found)
    }

    /// The indentation for members of `obj`: its members' own, else its
    /// opening line's plus one step.
    fn member_indent(&self, obj: &Node) -> String {
        object_members(obj)
            .last()
            .and_then(|m| first_on_line(self.src, m.key_span.start))
            .map(str::to_string)
            .unwrap_or_else(|| {
                format!("{}{}", line_lead(self.src, obj.span.start), self.style.unit)
            })
    }

    /// The indentation of `member`'s line (for pretty-printing its value).
    fn indent_of_member(&self, member: &Member, parent: &Node) -> String {
        first_on_line(self.src, member.key_span.start)
            .map(str::to_string)
            .unwrap_or_else(|| self.member_indent(parent))
    }

    /// `"key": value`, the value laid out from `indent` (or on one line).
    fn render_member(&self, (key, value): &(String, Tree), indent: Option<&str>) -> String {
        format!(
            "{}{}{}",
            json_string(key),
            self.style.colon,
            self.style.render(value, indent)
        )
    }

    /// Adds `item` as the last member of `obj` (`parent` encloses it, if any).
    fn insert_member(
        &self,
        obj: &Node,
        parent: Option<&Node>,
        item: &(String, Tree),
        edits: &mut Vec<Edit>,
    ) {
        let src = self.src;
        let style = &self.style;
        let (open, close) = (obj.span.start, obj.span.end - 1);
        let member = |indent: Option<&str>| self.render_member(item, indent);
        let members = object_members(obj);
        let Some(last) = members.last() else {
            let inner = &src[open + 1..close];
            let inline_parent = parent.is_some_and(|p| !src[p.span.clone()].contains('\n'));
            let text = if inline_parent {
                member(None)
            } else {
                let base = line_lead(src, open);
                let indent = format!("{base}{}", style.unit);
                format!(
                    "{nl}{indent}{}{nl}{base}",
                    member(Some(&indent)),
                    nl = style.newline
                )
            };
            if inner.trim().is_empty() {
                edits.push((open + 1..close, text));
            } else {
                edits.push((close..close, text));
            }
            return;
        };
        let value_end = last.value.span.end;
        if !src[open..=close].contains('\n') {
            let space = if style.comma.ends_with(' ') { " " } else { "" };
            match last.comma {
                Some(c) => edits.push((c + 1..c + 1, format!("{space}{},", member(None)))),
                None => edits.push((value_end..value_end, format!(",{space}{}", member(None)))),
            }
            return;
        }
        let indent = self.member_indent(obj);
        let after = last.comma.map_or(value_end, |c| c + 1);
        let at = line_end(src, after).unwrap_or(after);
        let text = format!(
            "{}{indent}{}{}",
            style.newline,
            member(Some(&indent)),
            if last.comma.is_some() { "," } else { "" }
        );
        match last.comma {
            Some(_) => edits.push((at..at, text)),
            None if at == value_end => edits.push((at..at, format!(",{text}"))),
            None => {
                edits.push((value_end..value_end, ",".into()));
                edits.push((at..at, text));
            }
        }
    }

    /// Deletes member `index` of `obj`, with its line break and the comma
    /// that separated it from the one before.
    fn remove_member(&self, obj: &Node, index: usize, edits: &mut Vec<Edit>) {
        let src = self.src;
        let members = object_members(obj);
        let Some(m) = members.get(index) else { return };
        let (open, close) = (obj.span.start, obj.span.end - 1);
        let end = m.comma.map_or(m.value.span.end, |c| c + 1);
        let own_line = first_on_line(src, m.key_span.start).is_some();
        let line_break = || line_break_before(src, m.key_span.start);
        if members.len() == 1 {
            let rest_blank = src[open + 1..m.key_span.start].trim().is_empty()
                && src[end..close].trim().is_empty();
            if rest_blank {
                edits.push((open + 1..close, String::new()));
            } else {
                let start = if own_line {
                    line_break()
                } else {
                    m.key_span.start
                };
                edits.push((start..end, String::new()));
            }
        } else if index + 1 == members.len() {
            let prev_comma = members[index - 1].comma.unwrap_or(m.key_span.start);
            let start = if own_line {
                line_break()
            } else {
                prev_comma + 1
            };
            if m.comma.is_some() {
                // Trailing-comma style: the one before keeps its comma.
                edits.push((start..end, String::new()));
            } else {
                edits.push((start..end, String::new()));
                edits.push((prev_comma..prev_comma + 1, String::new()));
            }
        } else {
            let start = if own_line {
                line_break()
            } else {
                m.key_span.start
            };
            let mut stop = end;
            if !own_line {
                while matches!(src.as_bytes().get(stop), Some(b' ' | b'\t')) {
                    stop += 1;
                }
            }
            edits.push((start..stop, String::new()));
        }
    }
}

/// The leading whitespace of `at`'s line when nothing but whitespace comes
/// before `at` on it.
fn first_on_line(src: &str, at: usize) -> Option<&str> {
    let start = src[..at].rfind('\n').map_or(0, |i| i + 1);
    let lead = &src[start..at];
    lead.chars().all(|c| c == ' ' || c == '\t').then_some(lead)
}

/// The leading whitespace of the line holding `at`.
fn line_lead(src: &str, at: usize) -> &str {
    let start = src[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = &src[start..];
    let len = line.len() - line.trim_start_matches([' ', '\t']).len();
    &line[..len.min(at - start)]
}

/// The start of the line break before `at` (`\r\n` or `\n`).
fn line_break_before(src: &str, at: usize) -> usize {
    match src[..at].rfind('\n') {
        Some(i) if i > 0 && src.as_bytes()[i - 1] == b'\r' => i - 1,
        Some(i) => i,
        None => at,
    }
}

/// Where the line continuing at `from` ends, if only spaces and comments
/// that stay on the line come first; `None` when something else follows.
fn line_end(src: &str, from: usize) -> Option<usize> {
    let bytes = src.as_bytes();
    let mut i = from;
    loop {
        match bytes.get(i) {
            Some(b' ' | b'\t') => i += 1,
            Some(b'\r') if bytes.get(i + 1) == Some(&b'\n') => return Some(i),
            Some(b'\n') => return Some(i),
            Some(b'/') if bytes.get(i + 1) == Some(&b'/') => {
                return Some(match src[i..].find('\n') {
                    Some(n) if bytes[i + n - 1] == b'\r' => i + n - 1,
                    Some(n) => i + n,
                    None => src.len(),
                });
            }
            Some(b'/') if bytes.get(i + 1) == Some(&b'*') => {
                let close = src[i + 2..].find("*/")? + i + 4;
                if src[i..close].contains('\n') {
                    return None;
                }
                i = close;
            }
            _ => return None,
        }
    }
}

/// The indentation step: how much deeper an object's first member sits than
/// the object's own line.
fn detect_unit(src: &str, root: &Node) -> Option<String> {
    let mut objects = vec![root];
    objects.extend(object_members(root).iter().map(|m| &m.value));
    objects.into_iter().find_map(|obj| {
        let first = object_members(obj).first()?;
        let lead = first_on_line(src, first.key_span.start)?;
        let unit = lead.strip_prefix(line_lead(src, obj.span.start))?;
        (!unit.is_empty()).then(|| unit.to_string())
    })
}

/// `": "` or `":"`, `", "` or `","`, from the file's first members.
fn detect_separators(src: &str, root: &Node) -> Style {
    let mut style = Style::default();
    let members = object_members(root);
    if let Some(first) = members.first() {
        if src[first.key_span.end..first.value.span.start] == *":" {
            style.colon = ":";
            style.comma = ",";
        }
        if let (Some(c), Some(second)) = (first.comma, members.get(1)) {
            let gap = &src[c + 1..second.key_span.start];
            if gap.is_empty() {
                style.comma = ",";
            } else if gap.starts_with(' ') {
                style.comma = ", ";
            }
        }
    }
    style
}
