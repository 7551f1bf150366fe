//! Label filters: tokens `key:value` (split at the first unescaped `:`, the
//! value may hold `*` wildcards), `key` (the instance has the label, any
//! value), each optionally negated with a leading `!`. Tokens are grouped by
//! key; an instance passes when every mentioned key accepts it (AND across
//! keys). Within a key the first token that matches the instance's value
//! decides (positive -> accept, negative -> reject); when none matches, the
//! key accepts only if all its tokens are negative, so `!env:prod` alone
//! passes every non-prod instance, including ones without `env`. Token
//! splitting and escapes follow simple patterns: GET splits on `,`, `|` and
//! `\t\r\n\x0b\x0c`; a JSON array element splits on `|` only.

use std::fmt;

use super::pattern::{split_words, write_escaped, Glob, PatternError, RawWord, Separators};

#[derive(Debug, Clone, PartialEq)]
struct LabelToken {
    negative: bool,
    /// `None` for a key-only token: any value matches.
    value: Option<Glob>,
}

#[derive(Debug, Clone, PartialEq)]
struct KeyRule {
    key: String,
    tokens: Vec<LabelToken>,
}

impl KeyRule {
    fn accepts(&self, value: Option<&str>) -> bool {
        if let Some(value) = value {
            let hit = self.tokens.iter().find(|t| t.value.as_ref().is_none_or(|g| g.is_match(value)));
            if let Some(token) = hit {
                return !token.negative;
            }
        }
        self.tokens.iter().all(|t| t.negative)
    }
}

/// A compiled label filter; see the module docs for the semantics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelFilter {
    /// In first-mention order, one entry per distinct key.
    rules: Vec<KeyRule>,
}

impl LabelFilter {
    /// Parses a GET query parameter (separators `,` `|` `\t\r\n\x0b\x0c`).
    pub fn parse_get(s: &str) -> Result<Self, PatternError> {
        let (raw, _) = split_words(s, Separators::Get, 0)?;
        let mut filter = Self::default();
        filter.extend(raw)?;
        Ok(filter)
    }

    /// Parses a JSON array; each element may hold several `|`-separated tokens.
    pub fn parse_list<S: AsRef<str>>(elems: &[S]) -> Result<Self, PatternError> {
        let mut filter = Self::default();
        let mut next_index = 0;
        for elem in elems {
            let (raw, next) = split_words(elem.as_ref(), Separators::List, next_index)?;
            filter.extend(raw)?;
            next_index = next;
        }
        Ok(filter)
    }

    fn extend(&mut self, raw: Vec<RawWord<'_>>) -> Result<(), PatternError> {
        for word in raw {
            let colon = word.body.iter().position(|&u| u == (':', false));
            let key_units = &word.body[..colon.unwrap_or(word.body.len())];
            if key_units.is_empty() {
                return Err(PatternError::EmptyLabelKey { token: word.raw.to_owned() });
            }
            // Keys are literal: a `*` in a key has no wildcard meaning.
            let key: String = key_units.iter().map(|&(c, _)| c).collect();
            let token =
                LabelToken { negative: word.negative, value: colon.map(|at| Glob::compile(&word.body[at + 1..])) };
            match self.rules.iter_mut().find(|r| r.key == key) {
                Some(rule) => rule.tokens.push(token),
                None => self.rules.push(KeyRule { key, tokens: vec![token] }),
            }
        }
        Ok(())
    }

    /// No tokens: every instance passes, so callers may skip filtering.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Distinct keys, in first-mention order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.key.as_str())
    }

    /// `get(key)` returns the instance's value for a key.
    pub fn matches<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.rules.iter().all(|rule| rule.accepts(get(&rule.key)))
    }
}

/// Renders GET-style, tokens grouped by key (equivalent to the parsed input).
impl fmt::Display for LabelFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tokens = self.rules.iter().flat_map(|r| r.tokens.iter().map(move |t| (r.key.as_str(), t)));
        for (i, (key, token)) in tokens.enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if token.negative {
                f.write_str("!")?;
            }
            write_escaped(f, key, true, true)?;
            if let Some(value) = &token.value {
                write!(f, ":{value}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn get(s: &str) -> LabelFilter {
        LabelFilter::parse_get(s).expect("valid filter")
    }

    /// Builds an instance from `k=v` pairs and runs the filter on it.
    fn passes(filter: &LabelFilter, labels: &[(&str, &str)]) -> bool {
        let map: HashMap<&str, &str> = labels.iter().copied().collect();
        filter.matches(|k| map.get(k).copied())
    }

    #[test]
    fn empty_filter_passes_everything() {
        for f in [get(""), get(",|,"), LabelFilter::parse_list::<&str>(&[]).expect("ok")] {
            assert!(f.is_empty());
            assert!(passes(&f, &[]));
            assert!(passes(&f, &[("a", "b")]));
        }
    }

    #[test]
    fn exact_value() {
        let f = get("env:prod");
        assert!(!f.is_empty());
        assert!(passes(&f, &[("env", "prod")]));
        assert!(!passes(&f, &[("env", "production")]));
        assert!(!passes(&f, &[("env", "dev")]));
        assert!(!passes(&f, &[("other", "prod")]));
        assert!(!passes(&f, &[]));
    }

    #[test]
    fn or_within_key() {
        let f = get("env:prod|env:staging,env:qa");
        assert!(passes(&f, &[("env", "prod")]));
        assert!(passes(&f, &[("env", "staging")]));
        assert!(passes(&f, &[("env", "qa")]));
        assert!(!passes(&f, &[("env", "dev")]));
        assert_eq!(f.keys().collect::<Vec<_>>(), ["env"]);
    }

    #[test]
    fn and_across_keys() {
        let f = get("env:prod,region:eu|env:staging");
        assert_eq!(f.keys().collect::<Vec<_>>(), ["env", "region"]);
        assert!(passes(&f, &[("env", "prod"), ("region", "eu")]));
        assert!(passes(&f, &[("env", "staging"), ("region", "eu")]));
        assert!(!passes(&f, &[("env", "prod"), ("region", "us")]));
        assert!(!passes(&f, &[("env", "prod")]));
        assert!(!passes(&f, &[("region", "eu")]));
    }

    #[test]
    fn wildcard_values() {
        let f = get("host:web-*");
        assert!(passes(&f, &[("host", "web-01")]));
        assert!(passes(&f, &[("host", "web-")]));
        assert!(!passes(&f, &[("host", "db-01")]));
        let f = get("path:*/var/*log");
        assert!(passes(&f, &[("path", "/srv/var/x/log")]));
        assert!(!passes(&f, &[("path", "/srv/var/x/logs")]));
        let f = get("host:*");
        assert!(passes(&f, &[("host", "")]));
        assert!(!passes(&f, &[]));
    }

    #[test]
    fn value_split_at_first_colon() {
        let f = get("url:http://x:80");
        assert!(passes(&f, &[("url", "http://x:80")]));
        let f = get(r"a\:b:c");
        assert_eq!(f.keys().collect::<Vec<_>>(), ["a:b"]);
        assert!(passes(&f, &[("a:b", "c")]));
        let f = get("k:");
        assert!(passes(&f, &[("k", "")]));
        assert!(!passes(&f, &[("k", "v")]));
    }

    #[test]
    fn negation_alone_accepts_the_rest() {
        let f = get("!env:prod");
        assert!(!passes(&f, &[("env", "prod")]));
        assert!(passes(&f, &[("env", "dev")]));
        assert!(passes(&f, &[]));
        let f = get("!env:prod,!env:qa");
        assert!(!passes(&f, &[("env", "qa")]));
        assert!(passes(&f, &[("env", "dev")]));
    }

    #[test]
    fn first_token_of_a_key_decides() {
        let f = get("!env:prod-eu,env:prod*");
        assert!(!passes(&f, &[("env", "prod-eu")]));
        assert!(passes(&f, &[("env", "prod-us")]));
        assert!(!passes(&f, &[("env", "dev")]));
        assert!(!passes(&f, &[]));
        let f = get("env:prod*,!env:prod-eu");
        assert!(passes(&f, &[("env", "prod-eu")]));
    }

    #[test]
    fn key_only_tokens() {
        let f = get("gpu");
        assert!(passes(&f, &[("gpu", "")]));
        assert!(passes(&f, &[("gpu", "a100")]));
        assert!(!passes(&f, &[("cpu", "x")]));
        let f = get("!gpu");
        assert!(!passes(&f, &[("gpu", "a100")]));
        assert!(passes(&f, &[("cpu", "x")]));
        let f = get("!gpu:t4,gpu");
        assert!(!passes(&f, &[("gpu", "t4")]));
        assert!(passes(&f, &[("gpu", "a100")]));
        assert!(!passes(&f, &[]));
    }

    #[test]
    fn list_form_keeps_commas() {
        let f = LabelFilter::parse_list(&["role:a,b|role:c", "zone:z1"]).expect("ok");
        assert_eq!(f.keys().collect::<Vec<_>>(), ["role", "zone"]);
        assert!(passes(&f, &[("role", "a,b"), ("zone", "z1")]));
        assert!(passes(&f, &[("role", "c"), ("zone", "z1")]));
        assert!(!passes(&f, &[("role", "a"), ("zone", "z1")]));
    }

    #[test]
    fn malformed() {
        let key = |t: &str| PatternError::EmptyLabelKey { token: t.into() };
        assert_eq!(get_err(":v"), key(":v"));
        assert_eq!(get_err("a:b,!:v"), key("!:v"));
        assert_eq!(get_err("a,!"), PatternError::EmptyNegation { word_index: 1 });
        assert_eq!(get_err(r"a:b\"), PatternError::TrailingEscape { pattern: r"a:b\".into() });
        let err = LabelFilter::parse_list(&["a", "x|!"]).expect_err("lone !");
        assert_eq!(err, PatternError::EmptyNegation { word_index: 2 });
        assert!(key(":v").to_string().contains("empty key"));
    }

    fn get_err(s: &str) -> PatternError {
        LabelFilter::parse_get(s).expect_err("malformed")
    }

    #[test]
    fn display_round_trips() {
        for s in ["env:prod,!env:q*a,gpu,!x", r"a\:b:c\,d", r"\!k:!v", "k:"] {
            let f = get(s);
            assert_eq!(get(&f.to_string()), f, "{s} -> {f}");
        }
        assert_eq!(get("a:1,b,a:2").to_string(), "a:1,a:2,b");
    }
}
