//! The editor of MCP hosts' config files (`spor_wire::jsonc`, used by
//! `connect`).
//!
//! Input: one byte choosing the flavour (JSON or JSONC), the container and
//! member names and the value to write, then the file's text (not UTF-8:
//! nothing to do, the companion refuses such files before editing).
//!
//! Checks, against serde_json's reading of the text (JSONC first turned into
//! JSON by an independent comment and trailing-comma stripper):
//! - the editor accepts exactly the JSON(C) documents whose top level is an
//!   object, and refuses everything else with an error (a 1-based position
//!   inside the text) from every operation alike, never with a result;
//! - a parsed document re-emitted without change is the input byte for byte;
//! - after an upsert the lookup finds exactly the value written, a second
//!   upsert changes nothing, and the text means the input plus that value;
//!   upsert then remove gives back the input byte for byte when the member
//!   was absent (unless the text was blank or the container empty: then it
//!   is removed too, as documented);
//! - a remove leaves the member absent and changes nothing else's meaning.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::de::IgnoredAny;
use serde_json::{Map, Value};
use spor_companion_fuzz::{json_without_repeats, jsonc_to_json};
use spor_wire::jsonc::{self, Lookup, Syntax, SyntaxError, Tree, Upsert};

const CONTAINERS: [&str; 4] = ["mcpServers", "servers", "a", ""];
const KEYS: [&str; 4] = ["spor", "a", "é\"\\/", ""];

fn s(v: &str) -> Tree {
    Tree::Str(v.to_string())
}

fn obj(fields: &[(&str, Tree)]) -> Tree {
    Tree::Object(
        fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

/// What is written: the three hosts' entries and a few shapes beyond them.
fn value(choice: u8) -> Tree {
    let url = "http://127.0.0.1:7767/mcp";
    let list = |v: &[&str]| Tree::List(v.iter().map(|x| x.to_string()).collect());
    match choice {
        0 => obj(&[
            ("command", s("/opt/spor/bin/spor-companiond")),
            ("args", list(&["bridge", url])),
        ]),
        1 => obj(&[("type", s("http")), ("url", s(url))]),
        2 => obj(&[("url", s(url))]),
        3 => s("x"),
        4 => list(&[]),
        5 => obj(&[]),
        6 => obj(&[("nested", obj(&[("a", list(&["\u{1}", "é", ""]))]))]),
        _ => s("a\"b\\\n\u{7f}\u{2028}"),
    }
}

fn to_json(tree: &Tree) -> Value {
    match tree {
        Tree::Str(v) => Value::String(v.clone()),
        Tree::List(items) => Value::Array(items.iter().cloned().map(Value::String).collect()),
        Tree::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        ),
    }
}

/// How serde_json reads a document (BOM dropped, JSONC made JSON first).
enum Oracle {
    /// A JSON object, as a value.
    Object(Map<String, Value>),
    /// A JSON object whose meaning a value cannot hold: a name repeated in
    /// an object, a number out of range, a lone surrogate escape; or one
    /// nested past serde_json's limit (128, below the editor's 256).
    Unheld,
    /// Not a JSON object.
    Invalid,
}

fn oracle(src: &str, syntax: Syntax) -> Oracle {
    let body = src.strip_prefix('\u{feff}').unwrap_or(src);
    let json = match syntax {
        Syntax::Json => Some(body.to_string()),
        Syntax::Jsonc => jsonc_to_json(body),
    };
    let Some(json) = json else {
        return Oracle::Invalid;
    };
    let top_is_object = json
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{');
    if !top_is_object {
        // Whatever serde_json thinks of it, the editor needs an object.
        return Oracle::Invalid;
    }
    if let Some(Value::Object(map)) = json_without_repeats(&json) {
        return Oracle::Object(map);
    }
    match serde_json::from_str::<IgnoredAny>(&json) {
        Ok(_) => Oracle::Unheld,
        Err(e) if e.to_string().contains("recursion limit") => Oracle::Unheld,
        Err(_) => Oracle::Invalid,
    }
}

/// Whether `after` is `before` with the whitespace between one `{` and
/// the `}` right after it taken out, and nothing else changed.
fn only_blank_removed_between_braces(before: &str, after: &str) -> bool {
    let mut prefix = before
        .bytes()
        .zip(after.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    while !before.is_char_boundary(prefix) {
        prefix -= 1;
    }
    let (b, a) = (&before[prefix..], &after[prefix..]);
    let Some(gap) = b.len().checked_sub(a.len()) else {
        return false;
    };
    gap > 0
        && b.ends_with(a)
        && before[..prefix].ends_with('{')
        && a.starts_with('}')
        && b[..gap]
            .bytes()
            .all(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
}

/// The editor's rule for a file with nothing in it yet (any Unicode
/// whitespace, as `str::trim` has it, after an optional byte-order mark).
fn is_blank(src: &str) -> bool {
    src.strip_prefix('\u{feff}')
        .unwrap_or(src)
        .trim()
        .is_empty()
}

/// An error points at a character of the text or just past its end.
fn check_position(src: &str, e: &SyntaxError) {
    let lines: Vec<&str> = src.split('\n').collect();
    assert!(
        (1..=lines.len()).contains(&e.line),
        "line {} of {}: {e:?}",
        e.line,
        lines.len()
    );
    let chars = lines[e.line - 1].chars().count();
    assert!((1..=chars + 1).contains(&e.column), "column of {e:?}");
    assert!(!e.message.is_empty());
}

struct Case<'a> {
    syntax: Syntax,
    container: &'a str,
    key: &'a str,
    value: Tree,
}

impl Case<'_> {
    fn lookup(&self, src: &str) -> Result<Lookup, SyntaxError> {
        jsonc::lookup(src, self.syntax, self.container, self.key, &self.value)
    }

    fn upsert(&self, src: &str) -> Result<Upsert, SyntaxError> {
        jsonc::upsert(src, self.syntax, self.container, self.key, &self.value)
    }

    fn remove(&self, src: &str) -> Result<Option<String>, SyntaxError> {
        jsonc::remove(src, self.syntax, self.container, self.key)
    }

    /// `map` with the member set to our value.
    fn with(&self, mut map: Map<String, Value>) -> Map<String, Value> {
        let container = map
            .entry(self.container)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(c) = container {
            c.insert(self.key.to_string(), to_json(&self.value));
        }
        map
    }

    /// `map` without the member, and without the container if that empties it.
    fn without(&self, mut map: Map<String, Value>) -> Map<String, Value> {
        if let Some(Value::Object(c)) = map.get_mut(self.container) {
            if c.remove(self.key).is_some() && c.is_empty() {
                map.remove(self.container);
            }
        }
        map
    }

    /// A text the editor wrote: it parses, re-emits itself and means `want`.
    fn check_written(&self, text: &str, want: Option<&Value>) {
        let doc = jsonc::parse(text, self.syntax)
            .unwrap_or_else(|e| panic!("wrote a text it cannot read ({e:?}): {text:?}"));
        assert_eq!(doc.emit(), text);
        match (oracle(text, self.syntax), want) {
            (Oracle::Object(got), Some(want)) => {
                assert_eq!(&Value::Object(got), want, "meaning of {text:?}")
            }
            (Oracle::Invalid, _) => panic!("wrote invalid JSON(C): {text:?}"),
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, text)) = data.split_first() else {
        return;
    };
    let Ok(src) = std::str::from_utf8(text) else {
        return;
    };
    let case = Case {
        syntax: if choice & 1 == 0 {
            Syntax::Json
        } else {
            Syntax::Jsonc
        },
        container: CONTAINERS[usize::from(choice >> 1 & 3)],
        key: KEYS[usize::from(choice >> 3 & 3)],
        value: value(choice >> 5),
    };

    // The member as shown to a person is JSON meaning exactly it.
    let shown = format!("{{{}}}", jsonc::member_text(case.key, &case.value));
    let meant: Value = serde_json::from_str(&shown).expect("member_text is JSON");
    assert_eq!(meant[case.key], to_json(&case.value));

    let truth = oracle(src, case.syntax);
    let blank = is_blank(src);
    let parsed = jsonc::parse(src, case.syntax);
    match (&parsed, &truth) {
        (Ok(doc), Oracle::Invalid) => panic!("accepted invalid JSON(C); emits {:?}", doc.emit()),
        (Err(e), Oracle::Object(_)) => panic!("refused a valid document: {e:?}"),
        (Ok(doc), _) => assert_eq!(doc.emit(), src, "re-emitted without change"),
        (Err(e), _) => check_position(src, e),
    }

    let found = case.lookup(src);
    let upserted = case.upsert(src);
    let removed = case.remove(src);
    if blank {
        assert_eq!(found, Ok(Lookup::Absent));
        assert_eq!(removed, Ok(None));
        let Ok(Upsert::Inserted(text)) = &upserted else {
            panic!("blank text gave {upserted:?}");
        };
        case.check_written(text, Some(&Value::Object(case.with(Map::new()))));
        assert_eq!(case.lookup(text), Ok(Lookup::Same));
        return;
    }
    let found = match (parsed, found) {
        (Err(e), got) => {
            // Refused: the same error from every operation, and nothing else.
            assert_eq!(got.as_ref().err(), Some(&e), "lookup");
            assert_eq!(upserted.as_ref().err(), Some(&e), "upsert");
            assert_eq!(removed.as_ref().err(), Some(&e), "remove");
            return;
        }
        (Ok(_), Err(e)) => {
            // Parsed but not editable here: the container is not an object,
            // or a name appears twice.
            check_position(src, &e);
            assert!(
                e.message.ends_with("is not an object") || e.message.contains("appears twice"),
                "{e:?}"
            );
            assert_eq!(upserted.as_ref().err(), Some(&e), "upsert");
            assert_eq!(removed.as_ref().err(), Some(&e), "remove");
            return;
        }
        (Ok(_), Ok(found)) => found,
    };
    let before = match &truth {
        Oracle::Object(map) => Some(map.clone()),
        _ => None,
    };
    if let Some(map) = &before {
        let held = map
            .get(case.container)
            .and_then(|c| c.get(case.key))
            .map(|v| v == &to_json(&case.value));
        let expected = match held {
            None => Lookup::Absent,
            Some(true) => Lookup::Same,
            Some(false) => Lookup::Different,
        };
        assert_eq!(found, expected, "lookup");
    }

    // Upsert.
    let upserted = upserted.expect("upsert of a document that looks up");
    let written = match (&upserted, &found) {
        (Upsert::Unchanged, Lookup::Same) => src.to_string(),
        (Upsert::Inserted(t), Lookup::Absent) | (Upsert::Replaced(t), Lookup::Different) => {
            t.clone()
        }
        (u, f) => panic!("upsert gave {u:?} where lookup said {f:?}"),
    };
    let want = before.clone().map(|m| Value::Object(case.with(m)));
    case.check_written(&written, want.as_ref());
    assert_eq!(
        case.lookup(&written),
        Ok(Lookup::Same),
        "lookup after upsert"
    );
    assert_eq!(case.upsert(&written), Ok(Upsert::Unchanged), "upsert twice");

    // Remove after the upsert: the member is gone, and an added one leaves
    // no trace unless the container goes with it.
    let undone = case
        .remove(&written)
        .expect("remove after upsert")
        .expect("something to remove after upsert");
    let want = before
        .clone()
        .map(|m| Value::Object(case.without(case.with(m))));
    case.check_written(&undone, want.as_ref());
    assert_eq!(case.lookup(&undone), Ok(Lookup::Absent));
    if found == Lookup::Absent {
        let container_was_empty = before.as_ref().map(|m| {
            m.get(case.container)
                .and_then(Value::as_object)
                .is_some_and(Map::is_empty)
        });
        let root_was_empty = before.as_ref().is_some_and(Map::is_empty);
        if container_was_empty == Some(false) && !(root_was_empty && undone != src) {
            assert_eq!(undone, src, "upsert then remove gives the input back");
        } else if container_was_empty == Some(false) {
            // The documented exception: an object with only whitespace
            // inside comes back as `{}`.
            assert!(
                only_blank_removed_between_braces(src, &undone),
                "upsert then remove of {src:?} gave {undone:?}"
            );
        }
    }

    // Remove from the input itself.
    match (removed.expect("remove of a document that looks up"), &found) {
        (None, Lookup::Absent) => {}
        (Some(text), Lookup::Same | Lookup::Different) => {
            let want = before.map(|m| Value::Object(case.without(m)));
            case.check_written(&text, want.as_ref());
            assert_eq!(case.lookup(&text), Ok(Lookup::Absent));
        }
        (r, f) => panic!("remove gave {r:?} where lookup said {f:?}"),
    }
});
