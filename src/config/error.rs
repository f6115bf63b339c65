//! Config errors, and turning toml's byte spans into `file:line:column` locations.
//!
//! Every message an operator sees from a config that does not load is one line that names the
//! file, the 1-based line and column, and the offending key. This module must never lose the
//! location: an error without one would send the operator hunting through the file.

use std::ops::Range;
use std::path::PathBuf;

/// Why a config did not load. `Display` is the complete line to print for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("{}: cannot read config file: {error}", path.display())]
    Read {
        path: PathBuf,
        /// Kept out of `source()` on purpose: its text is already part of the message, and a
        /// printer that walks the source chain would show it twice.
        error: std::io::Error,
    },
    /// The text is not valid TOML, or does not have the expected shape (unknown key, wrong
    /// type, duplicate key).
    #[error("{origin}:{line}:{column}: {message}")]
    Syntax {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// Valid TOML whose values break a rule (range, reference, duplicate, missing key).
    #[error("{origin}:{line}:{column}: {message}")]
    Invalid {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
}

impl ConfigError {
    /// The 1-based `(line, column)` the error points at, if it points into the file.
    pub fn location(&self) -> Option<(usize, usize)> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Syntax { line, column, .. }
            | ConfigError::Invalid { line, column, .. } => Some((*line, *column)),
        }
    }
}

/// Maps byte offsets in one config text to 1-based line and column, and builds located errors.
pub(super) struct Locator<'a> {
    origin: &'a str,
    text: &'a str,
    /// Integer literals TOML cannot hold, by byte offset, as written (see `overflow`).
    literals: Vec<(usize, String)>,
}

impl<'a> Locator<'a> {
    pub(super) fn new(origin: &'a str, text: &'a str) -> Self {
        Locator {
            origin,
            text,
            literals: Vec::new(),
        }
    }

    /// Remembers the oversized integer literals that were read as stand-ins, so that a range
    /// error about one of them shows what the file says.
    pub(super) fn set_literals(&mut self, literals: Vec<(usize, String)>) {
        self.literals = literals;
    }

    /// The value at byte `offset` as the operator wrote it: `value` itself unless it stands in
    /// for a literal too large for an integer.
    pub(super) fn shown(&self, offset: usize, value: i64) -> String {
        self.literals
            .iter()
            .find(|(at, _)| *at == offset)
            .map_or_else(|| value.to_string(), |(_, text)| text.clone())
    }

    /// The file name messages use.
    pub(super) fn origin(&self) -> &str {
        self.origin
    }

    /// 1-based line and column of byte `offset`. Columns count characters, not bytes, so they
    /// match what an editor shows for non-ASCII lines.
    pub(super) fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// 1-based line of the start of `span`, for messages like "first defined at line 3".
    pub(super) fn line_of(&self, span: &Range<usize>) -> usize {
        self.position(span.start).0
    }

    /// A semantic error pointing at the start of `span`.
    pub(super) fn invalid(&self, span: &Range<usize>, message: String) -> ConfigError {
        let (line, column) = self.position(span.start);
        ConfigError::Invalid {
            origin: self.origin.to_string(),
            line,
            column,
            message,
        }
    }

    /// A TOML parse or shape error. toml attaches a span to every error it raises for a
    /// document; should one ever come without, the error points at the top of the file rather
    /// than dropping the message.
    pub(super) fn syntax(&self, error: &toml::de::Error) -> ConfigError {
        let start = error.span().map_or(0, |s| s.start);
        let (line, column) = self.position(start);
        // serde speaks of "fields"; the operator edits "keys".
        // The parser's messages span several lines ("invalid table header\nexpected ..."); the
        // operator gets one line per error.
        let mut message = error
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ")
            .replacen("unknown field", "unknown key", 1)
            .replacen("missing field", "missing required key", 1)
            .replace("expected i64", "expected an integer")
            .replace("expected a sequence", "expected an array of tables");
        // Type errors point at the value but do not say whose value it is.
        if let Some(key) = key_before(self.text, start) {
            message = format!("`{key}`: {message}");
        }
        ConfigError::Syntax {
            origin: self.origin.to_string(),
            line,
            column,
            message,
        }
    }
}

/// The bare key of a `key = value` pair whose value starts at byte `offset`, if the text right
/// before `offset` has that shape (also inside inline tables).
fn key_before(text: &str, offset: usize) -> Option<&str> {
    let before = text.get(..offset)?.trim_end_matches([' ', '\t']);
    let before = before.strip_suffix('=')?.trim_end_matches([' ', '\t']);
    let is_key_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let key_start = before
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_key_char(*c))
        .last()?
        .0;
    Some(&before[key_start..])
}

#[cfg(test)]
mod tests {
    use super::{key_before, Locator};

    #[test]
    fn finds_the_key_of_a_value() {
        let text = "a = 1\nweight  =\t\"x\"\nb = { c = 2 }\n[t]";
        assert_eq!(key_before(text, 4), Some("a"));
        assert_eq!(key_before(text, text.find('"').unwrap()), Some("weight"));
        assert_eq!(key_before(text, text.find('2').unwrap()), Some("c"));
        assert_eq!(key_before(text, text.find('[').unwrap()), None);
        assert_eq!(key_before(text, 0), None);
        assert_eq!(key_before(text, 1000), None);
    }

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "a = 1\nbé = \"x\"\r\nc = 3";
        let loc = Locator::new("f.toml", text);
        assert_eq!(loc.position(0), (1, 1));
        assert_eq!(loc.position(4), (1, 5));
        assert_eq!(loc.position(6), (2, 1));
        // "bé = " is 5 characters but 6 bytes: the value starts at column 6.
        assert_eq!(loc.position(12), (2, 6));
        assert_eq!(loc.position(text.find('c').unwrap()), (3, 1));
        // Past the end, and inside a multi-byte character, clamp instead of panicking.
        assert_eq!(loc.position(text.len() + 10), (3, 6));
        assert_eq!(loc.position(8), (2, 2));
    }
}
