//! Unit tests of the editor: parsing and re-emitting, the refusals and
//! their positions, each layout rule of adding, replacing and removing, and
//! the regressions fuzzing found. The byte-exact host fixtures live in the
//! companion's `tests/it/connect.rs`.

use super::*;

const URL: &str = "http://127.0.0.1:7767/mcp";

fn entry() -> Tree {
    Tree::Object(vec![("url".into(), Tree::Str(URL.into()))])
}

fn s(v: &str) -> Tree {
    Tree::Str(v.into())
}

/// The text after upserting `servers.spor` (whatever the outcome).
fn upserted(src: &str, syntax: Syntax, value: &Tree) -> String {
    match upsert(src, syntax, "servers", "spor", value).expect("upsert") {
        Upsert::Unchanged => src.to_string(),
        Upsert::Inserted(t) | Upsert::Replaced(t) => t,
    }
}

fn removed(src: &str, syntax: Syntax) -> Option<String> {
    remove(src, syntax, "servers", "spor").expect("remove")
}

/// Upsert gives `written`, the lookup then finds the entry, and remove gives
/// the input back byte for byte.
fn round_trip(src: &str, syntax: Syntax, written: &str) {
    let text = upserted(src, syntax, &entry());
    assert_eq!(text, written, "written from {src:?}");
    assert_eq!(
        lookup(&text, syntax, "servers", "spor", &entry()),
        Ok(Lookup::Same)
    );
    assert_eq!(parse(&text, syntax).expect("parses").emit(), text);
    assert_eq!(
        removed(&text, syntax).as_deref(),
        Some(src),
        "removed from {text:?}"
    );
}

fn error(src: &str, syntax: Syntax) -> (usize, usize, String) {
    let e = parse(src, syntax).err().expect("refused");
    (e.line, e.column, e.message)
}

#[test]
fn parsing_then_emitting_gives_back_the_input_byte_for_byte() {
    for (src, syntax) in [
        ("{}", Syntax::Json),
        ("\u{feff}{\"a\": 1}\n", Syntax::Json),
        (
            "{\r\n\t\"a\": [1, -2.5e+3, true, false, null, \"x\\\"y\\u00e9\"],\r\n\t\"b\": {}\r\n}\r\n",
            Syntax::Json,
        ),
        (
            "// head\n{ /* a */ \"a\" /* b */ : /* c */ [ 1 , ] , // d\n \"\\u00e9\": {\"x\": {},},\n}\n// tail",
            Syntax::Jsonc,
        ),
        ("  {\"nested\": [[[[{}]]]], \"s\": \"//not a comment\"}  ", Syntax::Jsonc),
    ] {
        let doc = parse(src, syntax).unwrap_or_else(|e| panic!("{src:?}: {e:?}"));
        assert_eq!(doc.emit(), src);
    }
}

#[test]
fn refusals_say_what_and_where_in_characters() {
    use Syntax::{Json, Jsonc};
    let cases: &[(&str, Syntax, usize, usize, &str)] = &[
        (
            "{\n  // c\n}",
            Json,
            2,
            3,
            "comments are not allowed in JSON",
        ),
        ("{\n  /* c", Jsonc, 2, 3, "unterminated /* comment"),
        (
            "{\"a\": 1,}",
            Json,
            1,
            8,
            "trailing comma is not allowed in JSON",
        ),
        (
            "{\"a\": [1,]}",
            Json,
            1,
            9,
            "trailing comma is not allowed in JSON",
        ),
        ("{\"é\": \"ü", Json, 1, 7, "unterminated string"),
        ("{\"a\": \"\\x\"}", Json, 1, 8, "invalid escape in a string"),
        ("{\"a\": \"\\u12\"}", Json, 1, 8, "invalid \\u escape"),
        (
            "{\"a\": \"\\ud800\"}",
            Json,
            1,
            8,
            "invalid \\u escape (lone surrogate)",
        ),
        (
            "{\"a\": \"\\udc00\"}",
            Json,
            1,
            8,
            "invalid \\u escape (lone surrogate)",
        ),
        (
            "{\"a\": \"\t\"}",
            Json,
            1,
            8,
            "control character in a string",
        ),
        (
            "{\"a\": 01}",
            Json,
            1,
            8,
            "unexpected '1', expected ',' or '}' after an object member",
        ),
        ("{\"a\": 1.}", Json, 1, 7, "invalid number"),
        ("{\"a\": -}", Json, 1, 7, "invalid number"),
        (
            "{\"a\": tru}",
            Json,
            1,
            7,
            "unexpected 't', expected a value",
        ),
        (
            "{\"a\" 1}",
            Json,
            1,
            6,
            "unexpected '1', expected ':' after the member name",
        ),
        (
            "{a: 1}",
            Jsonc,
            1,
            2,
            "unexpected 'a', expected a member name in double quotes",
        ),
        (
            "{\"a\": [1 2]}",
            Json,
            1,
            10,
            "unexpected '2', expected ',' or ']' after an array item",
        ),
        (
            "{\"a\": 1,",
            Json,
            1,
            9,
            "unexpected end of file, expected a member name in double quotes",
        ),
        (
            "{\"a\":",
            Json,
            1,
            6,
            "unexpected end of file, expected a value",
        ),
        (
            "{} x",
            Json,
            1,
            4,
            "unexpected text after the end of the JSON value",
        ),
        ("[]", Json, 1, 1, "the top level is not a JSON object"),
        (
            "\u{feff} 1",
            Json,
            1,
            3,
            "the top level is not a JSON object",
        ),
        ("", Json, 1, 1, "unexpected end of file, expected a value"),
    ];
    for &(src, syntax, line, column, message) in cases {
        assert_eq!(
            error(src, syntax),
            (line, column, message.to_string()),
            "{src:?}"
        );
    }
    let deep = format!("{{\"a\": {}{}}}", "[".repeat(300), "]".repeat(300));
    assert_eq!(error(&deep, Json).2, "nested too deeply");
    let fine = format!("{{\"a\": {}{}}}", "[".repeat(200), "]".repeat(200));
    assert!(parse(&fine, Json).is_ok());
}

#[test]
fn every_operation_refuses_an_invalid_text_with_the_same_error() {
    for src in [
        "{\"servers\": {",
        "{\"servers\": []}",
        "{\"servers\": {}, \"servers\": {}}",
    ] {
        let want = upsert(src, Syntax::Json, "servers", "spor", &entry()).expect_err(src);
        assert_eq!(
            remove(src, Syntax::Json, "servers", "spor"),
            Err(want.clone())
        );
        assert_eq!(
            lookup(src, Syntax::Json, "servers", "spor", &entry()),
            Err(want)
        );
    }
    let twice = "{\"servers\": {\n  \"spor\": 1,\n  \"spor\": 2\n}}";
    let e = remove(twice, Syntax::Json, "servers", "spor").expect_err("twice");
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (3, 3, "\"spor\" appears twice in \"servers\"")
    );
}

#[test]
fn blank_text_becomes_a_new_two_space_document_keeping_a_byte_order_mark() {
    assert_eq!(
        upserted(" \n", Syntax::Json, &entry()),
        "{\n  \"servers\": {\n    \"spor\": {\n      \"url\": \"http://127.0.0.1:7767/mcp\"\n    }\n  }\n}\n"
    );
    assert!(upserted("\u{feff}", Syntax::Json, &s("x")).starts_with("\u{feff}{\n"));
    assert_eq!(removed("  ", Syntax::Json), None);
    assert_eq!(
        lookup("", Syntax::Json, "servers", "spor", &entry()),
        Ok(Lookup::Absent)
    );
}

#[test]
fn an_added_member_follows_the_files_indentation_line_breaks_and_separators() {
    round_trip(
        "{\r\n\t\"servers\": {\r\n\t\t\"a\": 1\r\n\t}\r\n}\r\n",
        Syntax::Json,
        "{\r\n\t\"servers\": {\r\n\t\t\"a\": 1,\r\n\t\t\"spor\": {\r\n\t\t\t\"url\": \"http://127.0.0.1:7767/mcp\"\r\n\t\t}\r\n\t}\r\n}\r\n",
    );
    round_trip(
        "{\n    \"theme\": \"dark\"\n}",
        Syntax::Json,
        "{\n    \"theme\": \"dark\",\n    \"servers\": {\n        \"spor\": {\n            \"url\": \"http://127.0.0.1:7767/mcp\"\n        }\n    }\n}",
    );
    round_trip(
        "{\"servers\":{\"a\":1}}",
        Syntax::Json,
        "{\"servers\":{\"a\":1,\"spor\":{\"url\":\"http://127.0.0.1:7767/mcp\"}}}",
    );
    round_trip(
        "{\"servers\": {\"a\": 1,}}",
        Syntax::Jsonc,
        "{\"servers\": {\"a\": 1, \"spor\": {\"url\": \"http://127.0.0.1:7767/mcp\"},}}",
    );
}

#[test]
fn a_comment_after_the_last_member_keeps_its_place_behind_the_new_comma() {
    round_trip(
        "{\"servers\": {\n  \"a\": 1 // one\n}}",
        Syntax::Jsonc,
        "{\"servers\": {\n  \"a\": 1, // one\n  \"spor\": {\n    \"url\": \"http://127.0.0.1:7767/mcp\"\n  }\n}}",
    );
    // A comment spanning lines: the member goes on the next line.
    let src = "{\"servers\": {\n  \"a\": 1 /* x\n */\n}}";
    let text = upserted(src, Syntax::Jsonc, &entry());
    assert_eq!(parse(&text, Syntax::Jsonc).expect("parses").emit(), text);
    assert_eq!(removed(&text, Syntax::Jsonc).as_deref(), Some(src));
}

#[test]
fn a_replaced_value_keeps_the_one_line_or_indented_layout_it_had() {
    let one_line = "{\"servers\": {\n  \"spor\": {\"url\": \"old\"}\n}}";
    assert_eq!(
        upsert(one_line, Syntax::Json, "servers", "spor", &entry()),
        Ok(Upsert::Replaced(
            "{\"servers\": {\n  \"spor\": {\"url\": \"http://127.0.0.1:7767/mcp\"}\n}}".into()
        ))
    );
    let indented = "{\"servers\": {\n  \"spor\": {\n    \"url\": \"old\"\n  }\n}}";
    assert_eq!(
        upserted(indented, Syntax::Json, &entry()),
        "{\"servers\": {\n  \"spor\": {\n    \"url\": \"http://127.0.0.1:7767/mcp\"\n  }\n}}"
    );
}

#[test]
fn lookup_finds_only_exactly_the_value_in_any_key_order() {
    let value = Tree::Object(vec![
        ("command".into(), s("c")),
        ("args".into(), Tree::List(vec!["a".into(), "b".into()])),
    ]);
    let find = |src: &str| lookup(src, Syntax::Jsonc, "servers", "spor", &value).expect(src);
    assert_eq!(
        find("{\"servers\": {\"spor\": {\"args\": [\"a\", \"b\"], \"command\": \"\\u0063\"}}}"),
        Lookup::Same
    );
    for different in [
        "{\"servers\": {\"spor\": {\"command\": \"c\", \"args\": [\"b\", \"a\"]}}}",
        "{\"servers\": {\"spor\": {\"command\": \"c\", \"args\": [\"a\", \"b\"], \"x\": 1}}}",
        "{\"servers\": {\"spor\": {\"command\": \"c\", \"command\": \"c\"}}}",
        "{\"servers\": {\"spor\": {\"command\": \"c\", \"args\": \"a b\"}}}",
        "{\"servers\": {\"spor\": null}}",
    ] {
        assert_eq!(find(different), Lookup::Different, "{different}");
    }
    assert_eq!(find("{\"servers\": {\"other\": 1}}"), Lookup::Absent);
    assert_eq!(find("{\"other\": {\"spor\": 1}}"), Lookup::Absent);
}

#[test]
fn removing_keeps_the_other_members_and_their_commas_tidy() {
    let other = |src: &str, key: &str| remove(src, Syntax::Jsonc, "servers", key).expect(src);
    let src = "{\"servers\": {\"a\": 1, \"b\": 2, \"c\": 3}}";
    assert_eq!(
        other(src, "a").as_deref(),
        Some("{\"servers\": {\"b\": 2, \"c\": 3}}")
    );
    assert_eq!(
        other(src, "b").as_deref(),
        Some("{\"servers\": {\"a\": 1, \"c\": 3}}")
    );
    assert_eq!(
        other(src, "c").as_deref(),
        Some("{\"servers\": {\"a\": 1, \"b\": 2}}")
    );
    let lines = "{\"servers\": {\n  \"a\": 1,\n  \"b\": 2,\n}}";
    assert_eq!(
        other(lines, "b").as_deref(),
        Some("{\"servers\": {\n  \"a\": 1,\n}}")
    );
    // The only member: the container goes too.
    assert_eq!(
        other("{\"x\": 1, \"servers\": {\"a\": 1}}", "a").as_deref(),
        Some("{\"x\": 1}")
    );
    assert_eq!(other(src, "z"), None);
}

#[test]
fn the_member_shown_to_a_person_is_indented_by_two_spaces_from_column_zero() {
    let value = Tree::Object(vec![
        ("command".into(), s("c \"q\"")),
        ("args".into(), Tree::List(vec!["a".into()])),
        ("env".into(), Tree::Object(vec![])),
    ]);
    assert_eq!(
        member_text("spor", &value),
        "\"spor\": {\n  \"command\": \"c \\\"q\\\"\",\n  \"args\": [\"a\"],\n  \"env\": {}\n}"
    );
}

#[test]
fn an_empty_object_with_only_whitespace_inside_comes_back_as_braces() {
    // The documented exception to "remove gives back the input": `{}`,
    // `{ }` and `{\n}` all get the same layout, so the removal cannot tell
    // which it was and writes `{}`.
    for src in ["{}", "{ }", "{\t}", "{\n}", "{\r\n\r\n}"] {
        let text = upserted(src, Syntax::Json, &entry());
        assert_eq!(
            text,
            "{\n  \"servers\": {\n    \"spor\": {\n      \"url\": \"http://127.0.0.1:7767/mcp\"\n    }\n  }\n}"
                .replace('\n', if src.contains('\r') { "\r\n" } else { "\n" })
        );
        assert_eq!(
            removed(&text, Syntax::Json).as_deref(),
            Some("{}"),
            "{src:?}"
        );
    }
}

// ---------------------------------------------------------------- found by fuzzing

/// Fuzzing (jsonc_edit): adding to an object that held only a comment put
/// the member after the comment's line break and a new line break before
/// the `}`, and removing it left that extra line break behind, so write
/// then remove no longer gave the file back. Now the member goes on a line
/// of its own before the existing line break (or on the braces' line when
/// they share one), and removing it restores every byte.
#[test]
fn an_object_holding_only_comments_is_given_back_after_add_then_remove() {
    round_trip(
        "{ // nothing yet\n}\n",
        Syntax::Jsonc,
        "{ // nothing yet\n  \"servers\": {\n    \"spor\": {\n      \"url\": \"http://127.0.0.1:7767/mcp\"\n    }\n  }\n}\n",
    );
    round_trip(
        "{\r\n  // a\r\n  /* b */\r\n}\r\n",
        Syntax::Jsonc,
        "{\r\n  // a\r\n  /* b */\r\n  \"servers\": {\r\n    \"spor\": {\r\n      \"url\": \"http://127.0.0.1:7767/mcp\"\r\n    }\r\n  }\r\n}\r\n",
    );
    round_trip(
        "{ /* c */ }",
        Syntax::Jsonc,
        "{ /* c */ \"servers\": {\"spor\": {\"url\": \"http://127.0.0.1:7767/mcp\"}}}",
    );
    round_trip(
        "{\n  // a\n  /* b */ }",
        Syntax::Jsonc,
        "{\n  // a\n  /* b */ \n  \"servers\": {\n    \"spor\": {\n      \"url\": \"http://127.0.0.1:7767/mcp\"\n    }\n  }}",
    );
}

/// Fuzzing (jsonc_edit): removing a member that starts its line deleted the
/// line break before it, so whatever followed the member on its line (the
/// object's `}`, the next member, a comment running on to the next line)
/// joined the line above, and a `//` comment ending that line commented it
/// out: the file written was no longer valid. Now such a member goes alone
/// and its line stays.
#[test]
fn removing_a_member_never_joins_what_follows_it_to_a_line_comment_above() {
    let cases = [
        // The last member, with the object's `}` after it.
        (
            "{\"servers\": {\n  \"a\": 1, // about a\n  \"spor\": 2  }\n}",
            "{\"servers\": {\n  \"a\": 1 // about a\n  }\n}",
        ),
        // A middle member, with the next member after it.
        (
            "{\"servers\": {\n  \"a\": 1, // about a\n  \"spor\": 2, \"b\": 3\n}}",
            "{\"servers\": {\n  \"a\": 1, // about a\n  \"b\": 3\n}}",
        ),
        // The only member of the root (the container goes with our entry),
        // with `}` after it (CRLF).
        (
            "{ // mine\r\n  \"servers\": {\"spor\": 2} }\r\n",
            "{ // mine\r\n  }\r\n",
        ),
        // A block comment running on to the next line after the member.
        (
            "{\"servers\": {\n  \"a\": 1, // about a\n  \"spor\": 2 /* x\n  */\n}}",
            "{\"servers\": {\n  \"a\": 1 // about a\n  /* x\n  */\n}}",
        ),
    ];
    for (src, want) in cases {
        let got = removed(src, Syntax::Jsonc).expect("something to remove");
        assert_eq!(got, want, "from {src:?}");
        assert_eq!(parse(&got, Syntax::Jsonc).expect("valid").emit(), got);
    }
    // Nothing after the member on its line: its line goes as before.
    assert_eq!(
        removed(
            "{\"servers\": {\n  \"a\": 1, // about a\n  \"spor\": 2\n}}",
            Syntax::Jsonc
        )
        .as_deref(),
        Some("{\"servers\": {\n  \"a\": 1 // about a\n}}")
    );
}

/// Fuzzing (jsonc_edit): in a file with `\n` line breaks, a member added
/// right after a lone `\r` (here before the `}` of an object holding only a
/// comment) made a `\r\n` with it, and removing the member took that `\r`
/// along. The member now goes before such carriage returns.
#[test]
fn a_member_added_after_a_lone_carriage_return_is_removed_without_it() {
    round_trip(
        "{/* a\n b */\r}",
        Syntax::Jsonc,
        "{/* a\n b */\n  \"servers\": {\n    \"spor\": {\n      \"url\": \"http://127.0.0.1:7767/mcp\"\n    }\n  }\r}",
    );
}
