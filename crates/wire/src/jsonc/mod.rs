//! A small format-preserving editor for JSON and JSONC (VS Code's flavour:
//! `//` and `/* */` comments, trailing commas), used to add, look up and
//! remove the companion's entry in MCP hosts' config files. The parser
//! (`parse`) records the byte spans of objects, members, values, colons and
//! commas; every edit (`edit`) is a splice of those spans, so comments,
//! spacing, key order, line endings and every other byte of a person's
//! config survive untouched. Pure: text in, text out; the caller reads and
//! writes the file.
//!
//! Editing rules, chosen so that adding then removing our member gives back
//! the original bytes:
//! - a member is added after the last member of its object, on its own line
//!   with the indentation the object already uses (one-line objects get a
//!   one-line member); a trailing comma after the last member is kept and
//!   our member gets one too; in an object holding only comments it goes on
//!   a line of its own after them;
//! - removing a member deletes it, the line break before it and the comma
//!   that was added for it; an object left with only whitespace inside
//!   becomes `{}` (so `{ }` and `{\n}` come back as `{}`, the one change
//!   a round trip makes); when something follows the member on its line and
//!   a `//` comment ends the line above, the line break stays, since
//!   joining the lines would comment that out.

mod edit;
mod parse;
#[cfg(test)]
mod tests;

use edit::{apply, json_string, Doc, Style};
use parse::{matches, object_members};

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

/// A document that parsed: what [`upsert`], [`remove`] and [`lookup`] edit.
pub struct Document<'a> {
    doc: Doc<'a>,
}

/// Parses `src` as a config file: one object at the top level, optionally
/// after a byte-order mark. Unlike the editing functions, empty text is an
/// error here (there is no document to give back).
pub fn parse(src: &str, syntax: Syntax) -> Result<Document<'_>, SyntaxError> {
    Doc::parse(src, syntax).map(|doc| Document { doc })
}

impl Document<'_> {
    /// The text rebuilt from the parsed tree without any change. It equals
    /// the input byte for byte; the tests and the fuzz target check that,
    /// because every edit is a splice at the spans this rebuild uses.
    pub fn emit(&self) -> String {
        self.doc.emit()
    }
}

/// The byte-order mark, if any, and the rest.
fn split_bom(src: &str) -> (&str, &str) {
    match src.strip_prefix('\u{feff}') {
        Some(rest) => ("\u{feff}", rest),
        None => ("", src),
    }
}
