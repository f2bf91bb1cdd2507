//! A tiny JSON writer that keeps fields in the order written.
//!
//! Activities are written by hand rather than through a serialiser so that the bytes look
//! like the real feed's (field order of the docs' examples) and so that some records use a
//! different but equally valid escaping ([`Escaping::Ascii`]: `\u00e9`, surrogate pairs,
//! `\/`). A client that re-serialises records instead of keeping their bytes changes those,
//! which is exactly what the tests must catch. Invariant: output is always valid JSON.

use std::fmt::Write as _;

/// How strings are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escaping {
    /// Minimal escapes, UTF-8 as is (what serde_json writes).
    Minimal,
    /// Everything outside ASCII as `\uXXXX`, and `/` as `\/`.
    Ascii,
}

/// Appends `s` as a JSON string literal.
pub(crate) fn write_str(out: &mut String, s: &str, escaping: Escaping) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '/' if escaping == Escaping::Ascii => out.push_str("\\/"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if !c.is_ascii() && escaping == Escaping::Ascii => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// An object being written; fields appear in call order.
pub(crate) struct Obj<'a> {
    out: &'a mut String,
    escaping: Escaping,
    empty: bool,
}

impl<'a> Obj<'a> {
    pub(crate) fn open(out: &'a mut String, escaping: Escaping) -> Self {
        out.push('{');
        Self { out, escaping, empty: true }
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        write_str(self.out, key, self.escaping);
        self.out.push(':');
    }

    pub(crate) fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        write_str(self.out, value, self.escaping);
        self
    }

    pub(crate) fn opt_str(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        match value {
            Some(v) => self.str(key, v),
            None => self.null(key),
        }
    }

    pub(crate) fn null(&mut self, key: &str) -> &mut Self {
        self.key(key);
        self.out.push_str("null");
        self
    }

    pub(crate) fn int(&mut self, key: &str, value: i64) -> &mut Self {
        self.key(key);
        let _ = write!(self.out, "{value}");
        self
    }

    pub(crate) fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.key(key);
        self.out.push_str(if value { "true" } else { "false" });
        self
    }

    /// A nested object written by `fill`.
    pub(crate) fn obj(&mut self, key: &str, fill: impl FnOnce(&mut Obj<'_>)) -> &mut Self {
        self.key(key);
        let mut inner = Obj::open(self.out, self.escaping);
        fill(&mut inner);
        inner.close();
        self
    }

    /// An array written by `fill`.
    pub(crate) fn arr(&mut self, key: &str, fill: impl FnOnce(&mut Arr<'_>)) -> &mut Self {
        self.key(key);
        let mut inner = Arr::open(self.out, self.escaping);
        fill(&mut inner);
        inner.close();
        self
    }

    pub(crate) fn close(self) {
        self.out.push('}');
    }
}

/// An array being written.
pub(crate) struct Arr<'a> {
    out: &'a mut String,
    escaping: Escaping,
    empty: bool,
}

impl<'a> Arr<'a> {
    fn open(out: &'a mut String, escaping: Escaping) -> Self {
        out.push('[');
        Self { out, escaping, empty: true }
    }

    fn comma(&mut self) {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
    }

    pub(crate) fn str(&mut self, value: &str) -> &mut Self {
        self.comma();
        write_str(self.out, value, self.escaping);
        self
    }

    pub(crate) fn obj(&mut self, fill: impl FnOnce(&mut Obj<'_>)) -> &mut Self {
        self.comma();
        let mut inner = Obj::open(self.out, self.escaping);
        fill(&mut inner);
        inner.close();
        self
    }

    fn close(self) {
        self.out.push(']');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(escaping: Escaping) -> String {
        let mut out = String::new();
        let mut o = Obj::open(&mut out, escaping);
        o.str("name", "Zoë \"Z\" \\ 日本語 🚀\n/")
            .null("n")
            .int("i", -3)
            .bool("b", true)
            .obj("o", |o| {
                o.str("k", "v");
            })
            .arr("a", |a| {
                a.str("x").obj(|o| {
                    o.int("y", 1);
                });
            });
        o.close();
        out
    }

    #[test]
    fn minimal_escaping_keeps_utf8_and_field_order() {
        assert_eq!(
            object(Escaping::Minimal),
            "{\"name\":\"Zoë \\\"Z\\\" \\\\ 日本語 🚀\\n/\",\"n\":null,\"i\":-3,\"b\":true,\"o\":{\"k\":\"v\"},\"a\":[\"x\",{\"y\":1}]}"
        );
    }

    #[test]
    fn ascii_escaping_is_valid_json_with_the_same_value() {
        // GIVEN the same object in both escapings
        let ascii = object(Escaping::Ascii);
        let minimal = object(Escaping::Minimal);
        // THEN the bytes differ, the ASCII form is pure ASCII, and the values are equal
        assert_ne!(ascii, minimal);
        assert!(ascii.is_ascii());
        assert!(
            ascii.contains("\\u00eb") && ascii.contains("\\ud83d\\ude80") && ascii.contains("\\/")
        );
        let a: serde_json::Value = serde_json::from_str(&ascii).unwrap();
        let m: serde_json::Value = serde_json::from_str(&minimal).unwrap();
        assert_eq!(a, m);
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut out = String::new();
        write_str(&mut out, "a\u{1}\tb", Escaping::Minimal);
        assert_eq!(out, "\"a\\u0001\\tb\"");
    }
}
