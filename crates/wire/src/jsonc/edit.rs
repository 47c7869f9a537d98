//! The editor: a parsed document, the file's own style (indentation, line
//! breaks, separators) and the splices that add, replace and remove one
//! member. Each edit touches only the bytes of that member and the comma and
//! line break that go with it.

use std::ops::Range;

use super::parse::{self, line_column, object_members, Kind, Member, Node};
use super::{Syntax, SyntaxError, Tree};

/// How the file writes things, so what we add looks like the rest.
pub(super) struct Style {
    /// One indentation step.
    pub(super) unit: String,
    /// Line break.
    pub(super) newline: &'static str,
    /// Between a member name and its value.
    pub(super) colon: &'static str,
    /// Between items on one line.
    pub(super) comma: &'static str,
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
    pub(super) fn render(&self, tree: &Tree, indent: Option<&str>) -> String {
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

/// `s` as a JSON string literal.
pub(super) fn json_string(s: &str) -> String {
    // Serializing a str cannot fail; the fallback only keeps this panic-free.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A parsed document and its style.
pub(super) struct Doc<'a> {
    pub(super) src: &'a str,
    pub(super) root: Node,
    pub(super) style: Style,
}

/// Where the container and our member are, by index.
pub(super) struct Found<'d> {
    pub(super) container: Option<&'d Member>,
    pub(super) container_index: Option<usize>,
    pub(super) member: Option<usize>,
}

/// Replace these bytes with this text.
pub(super) type Edit = (Range<usize>, String);

/// `src` with the edits made (their ranges never overlap).
pub(super) fn apply(src: &str, mut edits: Vec<Edit>) -> String {
    // Later splices first, so earlier offsets stay valid.
    edits.sort_by_key(|e| std::cmp::Reverse(e.0.start));
    let mut out = src.to_string();
    for (range, text) in edits {
        out.replace_range(range, &text);
    }
    out
}

impl<'a> Doc<'a> {
    pub(super) fn parse(src: &'a str, syntax: Syntax) -> Result<Self, SyntaxError> {
        let root = parse::parse_root(src, syntax)?;
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

    /// `src` rebuilt from the tree (see [`parse::emit`]).
    pub(super) fn emit(&self) -> String {
        parse::emit(self.src, &self.root)
    }

    /// Finds the container member of the root and `key` inside it; a
    /// container that is not an object, or either name twice, is an error.
    pub(super) fn locate(&self, container: &str, key: &str) -> Result<Found<'_>, SyntaxError> {
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
    pub(super) fn indent_of_member(&self, member: &Member, parent: &Node) -> String {
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
    pub(super) fn insert_member(
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
            let base = line_lead(src, open);
            let indent = format!("{base}{}", style.unit);
            if inner.trim().is_empty() {
                // Nothing to keep inside: the object is laid out anew, and
                // removing its only member makes it `{}` again.
                let text = if inline_parent {
                    member(None)
                } else {
                    format!(
                        "{nl}{indent}{}{nl}{base}",
                        member(Some(&indent)),
                        nl = style.newline
                    )
                };
                edits.push((open + 1..close, text));
            } else if inline_parent || !inner.contains('\n') {
                // Only comments, on the braces' line: a one-line member, so
                // that removing it gives the line back as it was.
                edits.push((close..close, member(None)));
            } else {
                // Comments on lines of their own: the member goes on a new
                // line after them (before the line break of a `}` alone on
                // its line), so that removing it with the line break before
                // it gives them back as they were.
                let text = format!("{}{indent}{}", style.newline, member(Some(&indent)));
                let at = line_break_before(src, close);
                let at = if at > open && src[at..close].trim().is_empty() {
                    at
                } else {
                    close
                };
                let at = before_carriage_returns(src, at, style.newline);
                edits.push((at..at, text));
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
        let at = before_carriage_returns(src, at, style.newline);
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
    pub(super) fn remove_member(&self, obj: &Node, index: usize, edits: &mut Vec<Edit>) {
        let src = self.src;
        let members = object_members(obj);
        let Some(m) = members.get(index) else { return };
        let (open, close) = (obj.span.start, obj.span.end - 1);
        let end = m.comma.map_or(m.value.span.end, |c| c + 1);
        let line_break = line_break_before(src, m.key_span.start);
        // A member that starts its line goes with the line break before it,
        // so its whole line goes. Except when something follows it on its
        // line and a `//` comment ends the line above: joining the two would
        // comment that out, so then only the member (and the spaces after
        // it) goes, and the line stays.
        let prev_end = match index.checked_sub(1).map(|i| &members[i]) {
            Some(prev) => prev.comma.map_or(prev.value.span.end, |c| c + 1),
            None => open + 1,
        };
        let first = first_on_line(src, m.key_span.start).is_some();
        let keep_line = first
            && line_end(src, end).is_none()
            && line_comment_reaches(src, prev_end, line_break);
        let own_line = first && !keep_line;
        let mut stop = end;
        if !own_line {
            while matches!(src.as_bytes().get(stop), Some(b' ' | b'\t')) {
                stop += 1;
            }
        }
        if members.len() == 1 {
            let rest_blank = src[open + 1..m.key_span.start].trim().is_empty()
                && src[end..close].trim().is_empty();
            if rest_blank {
                edits.push((open + 1..close, String::new()));
            } else if own_line {
                edits.push((line_break..end, String::new()));
            } else if keep_line {
                edits.push((m.key_span.start..stop, String::new()));
            } else {
                edits.push((m.key_span.start..end, String::new()));
            }
        } else if index + 1 == members.len() {
            let prev_comma = members[index - 1].comma.unwrap_or(m.key_span.start);
            let range = if own_line {
                line_break..end
            } else if keep_line {
                m.key_span.start..stop
            } else {
                prev_comma + 1..end
            };
            edits.push((range, String::new()));
            if m.comma.is_none() {
                // Otherwise trailing-comma style: the one before keeps its comma.
                edits.push((prev_comma..prev_comma + 1, String::new()));
            }
        } else {
            let start = if own_line {
                line_break
            } else {
                m.key_span.start
            };
            edits.push((start..stop, String::new()));
        }
    }
}

/// `at`, moved back over carriage returns right before it when the file's
/// line breaks are `\n`: a `\n` added after a lone `\r` would read as one
/// `\r\n` line break, and removing the member would take the `\r` along.
fn before_carriage_returns(src: &str, mut at: usize, newline: &str) -> usize {
    if newline == "\n" {
        while at > 0 && src.as_bytes()[at - 1] == b'\r' {
            at -= 1;
        }
    }
    at
}

/// Whether a `//` comment in the gap `from..to` (whitespace and comments
/// only) runs on to `to`, the start of a line break.
fn line_comment_reaches(src: &str, from: usize, to: usize) -> bool {
    // Bytes, not `str` slices: the search never has to land on a character
    // boundary.
    let bytes = src.as_bytes();
    let mut i = from;
    while i < to {
        match (bytes[i], bytes.get(i + 1)) {
            (b'/', Some(b'/')) => {
                let line_end = bytes[i..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |n| i + n);
                if line_end >= to {
                    return true;
                }
                i = line_end;
            }
            (b'/', Some(b'*')) => {
                i = bytes[i + 2..]
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map_or(bytes.len(), |n| i + 2 + n + 2);
            }
            _ => i += 1,
        }
    }
    false
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
