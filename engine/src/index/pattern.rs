//! Netdata "simple patterns": an ordered list of words, each an exact string
//! or a `*`-glob, optionally negated with a leading `!`. The first word that
//! matches decides (positive -> match, negative -> rejected); if no word
//! matches the string is not matched. `\` escapes the next character. GET
//! parameters split words on `,`, `|` and `\t\r\n\x0b\x0c` (a space is part of
//! a word); JSON arrays hold one pattern per element, split on `|` only, and
//! the elements' words are concatenated. Empty words are skipped, and the
//! empty pattern matches everything. Words are compiled at parse time so a
//! match is a handful of `starts_with`/`ends_with`/`find` calls with no
//! allocation (except case-insensitive matching of input with uppercase).

use std::borrow::Cow;
use std::fmt;

/// Why a pattern or label filter could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    /// A word consisting of a lone `!`. `word_index` counts every
    /// separator-delimited word from 0, empty ones included, across all
    /// elements of a list.
    EmptyNegation { word_index: usize },
    /// The pattern (or list element) ends with an unescaped `\`.
    TrailingEscape { pattern: String },
    /// A label filter token such as `:value` or `!:value`.
    EmptyLabelKey { token: String },
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyNegation { word_index } => {
                write!(f, "pattern word #{word_index} is a '!' with nothing after it")
            }
            Self::TrailingEscape { pattern } => write!(f, "pattern '{pattern}' ends with a '\\' that escapes nothing"),
            Self::EmptyLabelKey { token } => {
                write!(f, "label filter '{token}' has an empty key before ':'")
            }
        }
    }
}

impl std::error::Error for PatternError {}

/// Outcome of evaluating a pattern against one string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchResult {
    Positive,
    Negative,
    NoMatch,
}

/// Which characters end a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Separators {
    /// GET query parameters: `,`, `|` and the non-space ASCII whitespace.
    Get,
    /// One element of a JSON array: `|` only.
    List,
}

impl Separators {
    fn contains(self, c: char) -> bool {
        match self {
            Self::Get => matches!(c, ',' | '|' | '\t' | '\r' | '\n' | '\x0b' | '\x0c'),
            Self::List => c == '|',
        }
    }
}

/// One character of a word body; `escaped` chars are never special.
pub(crate) type Unit = (char, bool);

/// A word as split from the input, before its body is interpreted.
#[derive(Debug)]
pub(crate) struct RawWord<'a> {
    /// The source text, escapes included, for error messages.
    pub(crate) raw: &'a str,
    pub(crate) negative: bool,
    pub(crate) body: Vec<Unit>,
}

/// Splits `s` into non-empty words. `first_index` lets a list keep counting
/// word indexes across its elements; the next free index is returned.
pub(crate) fn split_words(
    s: &str,
    seps: Separators,
    first_index: usize,
) -> Result<(Vec<RawWord<'_>>, usize), PatternError> {
    let mut words = Vec::new();
    let mut index = first_index;
    let mut start = 0;
    let mut body: Vec<Unit> = Vec::new();
    let mut chars = s.char_indices();
    loop {
        let next = chars.next();
        match next {
            Some((_, '\\')) => match chars.next() {
                Some((_, c)) => body.push((c, true)),
                None => return Err(PatternError::TrailingEscape { pattern: s.to_owned() }),
            },
            Some((_, c)) if !seps.contains(c) => body.push((c, false)),
            _ => {
                let end = next.map_or(s.len(), |(i, _)| i);
                let negative = body.first() == Some(&('!', false));
                if negative && body.len() == 1 {
                    return Err(PatternError::EmptyNegation { word_index: index });
                }
                let mut units = std::mem::take(&mut body);
                if !units.is_empty() {
                    if negative {
                        units.remove(0);
                    }
                    words.push(RawWord { raw: &s[start..end], negative, body: units });
                }
                index += 1;
                match next {
                    Some((i, c)) => start = i + c.len_utf8(),
                    None => return Ok((words, index)),
                }
            }
        }
    }
}

/// A compiled word body: exact text, or `prefix*middle*...*suffix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Glob {
    Exact(String),
    /// Empty middle pieces are dropped at compile time since `**` == `*`.
    Wild {
        prefix: String,
        middle: Vec<String>,
        suffix: String,
    },
}

impl Glob {
    /// Compiles a word body; unescaped `*` are wildcards.
    pub(crate) fn compile(units: &[Unit]) -> Self {
        let mut pieces = vec![String::new()];
        for &(c, escaped) in units {
            if c == '*' && !escaped {
                pieces.push(String::new());
            } else if let Some(last) = pieces.last_mut() {
                last.push(c);
            }
        }
        if pieces.len() == 1 {
            return Self::Exact(pieces.pop().unwrap_or_default());
        }
        let suffix = pieces.pop().unwrap_or_default();
        let mut rest = pieces.into_iter();
        let prefix = rest.next().unwrap_or_default();
        let middle = rest.filter(|p| !p.is_empty()).collect();
        Self::Wild { prefix, middle, suffix }
    }

    /// True for `*` (and `**`, ...): matches every string.
    pub fn is_any(&self) -> bool {
        matches!(self, Self::Wild { prefix, middle, suffix }
            if prefix.is_empty() && middle.is_empty() && suffix.is_empty())
    }

    pub fn is_match(&self, s: &str) -> bool {
        match self {
            Self::Exact(text) => s == text,
            Self::Wild { prefix, middle, suffix } => {
                if s.len() < prefix.len() + suffix.len()
                    || !s.starts_with(prefix.as_str())
                    || !s.ends_with(suffix.as_str())
                {
                    return false;
                }
                // Both bounds are char boundaries: they end a matched prefix
                // and start a matched suffix. Leftmost-first search is enough
                // because `*` can absorb anything between pieces.
                let mut rest = &s[prefix.len()..s.len() - suffix.len()];
                middle.iter().all(|piece| match rest.find(piece.as_str()) {
                    Some(at) => {
                        rest = &rest[at + piece.len()..];
                        true
                    }
                    None => false,
                })
            }
        }
    }

    fn map_text(&mut self, f: impl Fn(&str) -> String) {
        match self {
            Self::Exact(text) => *text = f(text),
            Self::Wild { prefix, middle, suffix } => {
                *prefix = f(prefix);
                *suffix = f(suffix);
                middle.iter_mut().for_each(|m| *m = f(m));
            }
        }
    }
}

/// Writes `text` so that `Separators::Get` parsing yields it back literally.
/// A leading `!` is escaped only where it would read as a negation; `:` only
/// where it would split a label key.
pub(crate) fn write_escaped(f: &mut fmt::Formatter<'_>, text: &str, at_start: bool, colon: bool) -> fmt::Result {
    for (i, c) in text.chars().enumerate() {
        let special = matches!(c, '*' | '\\') || (colon && c == ':') || Separators::Get.contains(c);
        if special || (c == '!' && at_start && i == 0) {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    Ok(())
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(text) => write_escaped(f, text, true, false),
            Self::Wild { prefix, middle, suffix } => {
                write_escaped(f, prefix, true, false)?;
                for piece in middle {
                    f.write_str("*")?;
                    write_escaped(f, piece, false, false)?;
                }
                f.write_str("*")?;
                write_escaped(f, suffix, false, false)
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Word {
    negative: bool,
    glob: Glob,
}

/// A compiled simple pattern; see the module docs for the semantics.
#[derive(Debug, Clone, PartialEq)]
pub struct SimplePattern {
    words: Vec<Word>,
    case_insensitive: bool,
}

impl Default for SimplePattern {
    fn default() -> Self {
        Self::match_all()
    }
}

impl SimplePattern {
    /// The positive words without wildcards: the names a caller spelled out.
    pub fn literals(&self) -> impl Iterator<Item = &str> {
        self.words.iter().filter(|w| !w.negative).filter_map(|w| match &w.glob {
            Glob::Exact(s) => Some(s.as_str()),
            Glob::Wild { .. } => None,
        })
    }
}

impl SimplePattern {
    /// Parses a GET query parameter (separators `,` `|` `\t\r\n\x0b\x0c`).
    pub fn parse_get(s: &str) -> Result<Self, PatternError> {
        let (raw, _) = split_words(s, Separators::Get, 0)?;
        Ok(Self::from_raw(raw))
    }

    /// Parses a JSON array: each element is split on `|` only and the
    /// elements' words are concatenated in order.
    pub fn parse_list<S: AsRef<str>>(elems: &[S]) -> Result<Self, PatternError> {
        let mut all = Vec::new();
        let mut next_index = 0;
        for elem in elems {
            let (raw, next) = split_words(elem.as_ref(), Separators::List, next_index)?;
            all.extend(raw);
            next_index = next;
        }
        Ok(Self::from_raw(all))
    }

    fn from_raw(raw: Vec<RawWord<'_>>) -> Self {
        let words = raw.into_iter().map(|w| Word { negative: w.negative, glob: Glob::compile(&w.body) }).collect();
        Self { words, case_insensitive: false }
    }

    /// The one name `text`, whatever characters it holds (`*`, `!`, `|`,
    /// spaces): for a name already resolved, not one a user typed.
    pub fn exact(text: &str) -> Self {
        Self { words: vec![Word { negative: false, glob: Glob::Exact(text.to_string()) }], case_insensitive: false }
    }

    /// The single word `!*`: matches nothing (an allowlist that failed to
    /// name a node fails closed).
    pub fn match_none() -> Self {
        Self { words: vec![Word { negative: true, glob: Glob::compile(&[('*', false)]) }], case_insensitive: false }
    }

    /// The single word `*`.
    pub fn match_all() -> Self {
        Self { words: vec![Word { negative: false, glob: Glob::compile(&[('*', false)]) }], case_insensitive: false }
    }

    /// Makes matching ignore case (full-text search). Not representable in
    /// the `Display` form, which only renders the (lowercased) words.
    pub fn case_insensitive(mut self) -> Self {
        if !self.case_insensitive {
            for word in &mut self.words {
                word.glob.map_text(str::to_lowercase);
            }
            self.case_insensitive = true;
        }
        self
    }

    /// True when every string matches, so callers may skip filtering: the
    /// pattern is empty or its first word is a positive `*` (first match wins,
    /// so later words can never reject anything).
    pub fn is_match_all(&self) -> bool {
        self.words.first().is_none_or(|w| !w.negative && w.glob.is_any())
    }

    /// The empty pattern evaluates to `Positive` for every input.
    pub fn evaluate(&self, s: &str) -> MatchResult {
        if self.words.is_empty() {
            return MatchResult::Positive;
        }
        let s = if self.case_insensitive { lowercase(s) } else { Cow::Borrowed(s) };
        for word in &self.words {
            if word.glob.is_match(&s) {
                return if word.negative { MatchResult::Negative } else { MatchResult::Positive };
            }
        }
        MatchResult::NoMatch
    }

    pub fn matches(&self, s: &str) -> bool {
        self.evaluate(s) == MatchResult::Positive
    }

    /// Netdata tries several candidate strings in order (e.g. hostname, then
    /// machine guid); the first candidate whose result is not NoMatch decides.
    /// No candidates, or none decisive, means not matched.
    pub fn matches_any<'a, I: IntoIterator<Item = &'a str>>(&self, candidates: I) -> bool {
        candidates.into_iter().map(|c| self.evaluate(c)).find(|r| *r != MatchResult::NoMatch)
            == Some(MatchResult::Positive)
    }

    /// The words, when every one is a positive exact name matched with
    /// case: then a string matches iff it equals one of them, so callers
    /// may look names up instead of testing every candidate.
    pub fn exact_words(&self) -> Option<Vec<&str>> {
        if self.case_insensitive || self.words.is_empty() {
            return None;
        }
        self.words
            .iter()
            .map(|w| match (&w.glob, w.negative) {
                (Glob::Exact(s), false) => Some(s.as_str()),
                _ => None,
            })
            .collect()
    }

    pub fn words(&self) -> usize {
        self.words.len()
    }
}

/// Lowercases without allocating when the input is already lowercase, which
/// is the common case for metric and label names.
fn lowercase(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(s.to_ascii_lowercase())
        } else {
            Cow::Borrowed(s)
        }
    } else if s.chars().any(|c| !c.to_lowercase().eq(std::iter::once(c))) {
        Cow::Owned(s.to_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

impl fmt::Display for SimplePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, word) in self.words.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if word.negative {
                f.write_str("!")?;
            }
            write!(f, "{}", word.glob)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "pattern_tests.rs"]
mod tests;
