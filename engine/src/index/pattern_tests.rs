use super::*;
use proptest::prelude::*;

fn get(s: &str) -> SimplePattern {
    SimplePattern::parse_get(s).expect("valid pattern")
}

fn list(elems: &[&str]) -> SimplePattern {
    SimplePattern::parse_list(elems).expect("valid pattern")
}

/// Escapes every special character so the result parses as one literal word.
fn escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if matches!(c, '*' | '\\' | '!' | ',' | '|' | '\t' | '\r' | '\n' | '\x0b' | '\x0c') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Reference glob matcher (backtracking over chars) to check the compiled one.
fn naive(pat: &[Unit], s: &[char]) -> bool {
    match pat.split_first() {
        None => s.is_empty(),
        Some((('*', false), rest)) => (0..=s.len()).any(|i| naive(rest, &s[i..])),
        Some((&(c, _), rest)) => s.first() == Some(&c) && naive(rest, &s[1..]),
    }
}

fn check(p: &SimplePattern, yes: &[&str], no: &[&str]) {
    for s in yes {
        assert!(p.matches(s), "{p} should match {s:?}");
    }
    for s in no {
        assert!(!p.matches(s), "{p} should not match {s:?}");
    }
}

#[test]
fn exact() {
    check(&get("foo"), &["foo"], &["", "fo", "foo2", "xfoo", "Foo"]);
}

#[test]
fn prefix_suffix_substring() {
    check(&get("foo*"), &["foo", "foobar"], &["fo", "xfoo"]);
    check(&get("*foo"), &["foo", "barfoo"], &["foox", "fo"]);
    check(&get("*foo*"), &["foo", "xfoox", "afoo", "foob"], &["fo", "f-oo"]);
}

#[test]
fn multi_piece() {
    let p = get("a*b*c");
    check(&p, &["abc", "abXbc", "aXbYc", "abbc", "abcbc"], &["acb", "ab", "bc", "abcX"]);
    check(&get("*ab*ab*"), &["abab", "xabyabz"], &["aab", "ab"]);
    check(&get("ab*ba"), &["abba", "abXba"], &["aba", "ab", "ba"]);
    check(&get("a*a"), &["aa", "aXa"], &["a", ""]);
    check(&get("é*ß*ü"), &["éßü", "é-ß-ü"], &["éü", "eßu"]);
}

#[test]
fn empty_pieces() {
    check(&get("**"), &["", "x", "anything"], &[]);
    check(&get("a**b"), &["ab", "aXb"], &["a", "ba"]);
    check(&get("***x***"), &["x", "axb"], &["", "y"]);
    assert!(get("**").is_match_all());
    assert_eq!(get("a**b***c").to_string(), "a*b*c");
}

#[test]
fn escapes() {
    check(&get(r"a\*b"), &["a*b"], &["ab", "aXb"]);
    check(&get(r"a\,b"), &["a,b"], &["a", "b"]);
    check(&get(r"a\|b"), &["a|b"], &["a", "b"]);
    check(&get(r"\!a"), &["!a"], &["a", "b"]);
    check(&get(r"a\\b"), &[r"a\b"], &["ab"]);
    check(&get(r"\**"), &["*", "*x"], &["x"]);
    check(&get(r"\q"), &["q"], &[r"\q"]);
    assert_eq!(get(r"\!a").words(), 1);
    assert_eq!(get(r"a\,b").words(), 1);
}

#[test]
fn negation() {
    let p = get("!*bad*,*");
    check(&p, &["good", "", "ba d"], &["bad", "very-bad-thing"]);
    assert_eq!(p.evaluate("bad"), MatchResult::Negative);
    assert_eq!(get("!foo").evaluate("foo"), MatchResult::Negative);
    assert_eq!(get("!foo").evaluate("bar"), MatchResult::NoMatch);
    // `!` is only special at the start of a word.
    check(&get("a!b"), &["a!b"], &["ab"]);
    let p = get("!!x");
    assert_eq!(p.evaluate("!x"), MatchResult::Negative);
}

#[test]
fn first_match_wins() {
    let p = get("a*,!ab*");
    check(&p, &["a", "ab", "abc"], &["b"]);
    let p = get("!ab*,a*");
    check(&p, &["a", "ax"], &["ab", "abc", "b"]);
    assert_eq!(p.evaluate("abc"), MatchResult::Negative);
    assert_eq!(p.evaluate("b"), MatchResult::NoMatch);
}

#[test]
fn get_separators() {
    for s in ["a,b", "a|b", "a\tb", "a\rb", "a\nb", "a\x0bb", "a\x0cb", "a,,|b", ",a,b,"] {
        let p = get(s);
        assert_eq!(p.words(), 2, "{s:?}");
        check(&p, &["a", "b"], &["a,b", "ab"]);
    }
    // A space is part of a word, so Netdata's space-separated form is one word.
    let p = get("!*bad* *");
    assert_eq!(p.words(), 1);
    assert_eq!(p.evaluate("good"), MatchResult::NoMatch);
    assert_eq!(p.evaluate("bad *"), MatchResult::Negative);
    let p = get("a b, c");
    assert_eq!(p.words(), 2);
    check(&p, &["a b", " c"], &["a", "b", "c"]);
}

#[test]
fn list_separators() {
    let p = list(&["a,b|c", "d\te", "", "!x*|*"]);
    assert_eq!(p.words(), 5);
    check(&p, &["a,b", "c", "d\te", "zzz"], &["xa"]);
    assert_eq!(p.to_string(), "a\\,b,c,d\\\te,!x*,*");
    assert_eq!(get(&p.to_string()), p);
}

#[test]
fn empty_pattern_and_star() {
    for p in [get(""), get(",|\n"), list(&[]), list(&["", "|"])] {
        assert_eq!(p.words(), 0);
        assert!(p.is_match_all());
        assert!(p.matches(""));
        assert!(p.matches("anything"));
        assert_eq!(p.to_string(), "");
    }
    for p in [get("*"), SimplePattern::match_all(), SimplePattern::default(), get("*,!x")] {
        assert!(p.is_match_all());
        check(&p, &["", "x", "*"], &[]);
    }
    assert_eq!(SimplePattern::match_all(), get("*"));
    assert_eq!(SimplePattern::match_all().to_string(), "*");
    for s in ["!*", "x,*", r"\*", "!x,*", "*x"] {
        assert!(!get(s).is_match_all(), "{s}");
    }
}

#[test]
fn malformed() {
    let neg = |i| PatternError::EmptyNegation { word_index: i };
    assert_eq!(SimplePattern::parse_get("!"), Err(neg(0)));
    assert_eq!(SimplePattern::parse_get("a,!"), Err(neg(1)));
    assert_eq!(SimplePattern::parse_get("a,,!|b"), Err(neg(2)));
    assert_eq!(SimplePattern::parse_list(&["a|b", "c,!"]).map(|p| p.words()), Ok(3));
    assert_eq!(SimplePattern::parse_list(&["a|b", "c|!"]), Err(neg(3)));
    let trailing = SimplePattern::parse_get(r"ab\");
    assert_eq!(trailing, Err(PatternError::TrailingEscape { pattern: r"ab\".into() }));
    assert_eq!(
        SimplePattern::parse_list(&["ok", r"x|y\"]),
        Err(PatternError::TrailingEscape { pattern: r"x|y\".into() })
    );
    assert!(SimplePattern::parse_get(r"ab\\").is_ok());
    assert!(SimplePattern::parse_get(r"\!").is_ok());
    assert!(neg(1).to_string().contains("'!' with nothing after it"));
    let msg = trailing.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains(r"'ab\'") && msg.contains("escapes nothing"), "{msg}");
}

#[test]
fn case_insensitive() {
    let p = get("!*IDLE*,CPU*").case_insensitive();
    assert!(p.matches("cpu.user"));
    assert!(p.matches("CPU.User"));
    assert!(!p.matches("cpu.idle"));
    assert!(!p.matches("Cpu.Idle"));
    assert!(!get("CPU*").matches("cpu"));
    let p = get("*ÉTÉ*").case_insensitive();
    assert!(p.matches("l'été") && p.matches("L'ÉTÉ"));
    assert_eq!(p.clone().case_insensitive(), p);
    assert_eq!(get("FOO").case_insensitive().to_string(), "foo");
}

#[test]
fn matches_any_candidate_order() {
    let p = get("!host-a,*-guid");
    // The first candidate with a decisive result wins.
    assert!(!p.matches_any(["host-a", "x-guid"]));
    assert!(p.matches_any(["host-b", "x-guid"]));
    assert!(p.matches_any(["x-guid", "host-a"]));
    assert!(!p.matches_any(["host-b", "other"]));
    assert!(!p.matches_any(std::iter::empty()));
    let names = [String::from("h"), String::from("g-guid")];
    assert!(p.matches_any(names.iter().map(String::as_str)));
}

#[test]
fn display_escapes() {
    assert_eq!(get(r"a\*b,!c*,\!d,e\|f\\").to_string(), r"a\*b,!c*,\!d,e\|f\\");
    assert_eq!(get("a!b").to_string(), "a!b");
    assert_eq!(list(&["x:y,z"]).to_string(), r"x:y\,z");
}

fn arb_pattern_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just('*'),
            Just('!'),
            Just('\\'),
            Just(','),
            Just('|'),
            Just('\n'),
            Just('a'),
            Just('b'),
            Just(' '),
            Just('é'),
        ],
        0..12,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn arb_subject() -> impl Strategy<Value = String> {
    prop::collection::vec(prop_oneof![Just('a'), Just('b'), Just('*'), Just('é')], 0..8)
        .prop_map(|v| v.into_iter().collect())
}

proptest! {
    #[test]
    fn parse_get_never_panics(s in any::<String>()) {
        if let Ok(p) = SimplePattern::parse_get(&s) {
            let _ = p.matches(&s);
            let _ = p.to_string();
        }
    }

    #[test]
    fn literal_word_matches_only_itself(word in any::<String>(), other in any::<String>()) {
        prop_assume!(!word.is_empty());
        let p = get(&escape(&word));
        prop_assert_eq!(p.words(), 1);
        prop_assert!(p.matches(&word));
        prop_assert_eq!(p.matches(&other), other == word);
        let (suffixed, prefixed) = (format!("{word}x"), format!("x{word}"));
        prop_assert!(!p.matches(&suffixed));
        prop_assert!(!p.matches(&prefixed));
    }

    #[test]
    fn star_matches_everything(s in any::<String>()) {
        prop_assert!(get("*").matches(&s));
        prop_assert!(list(&["*"]).matches(&s));
    }

    #[test]
    fn negated_literal_then_star(x in any::<String>(), s in any::<String>()) {
        prop_assume!(!x.is_empty());
        let p = get(&format!("!{},*", escape(&x)));
        prop_assert_eq!(p.matches(&s), s != x);
        prop_assert!(!p.matches(&x));
    }

    #[test]
    fn compiled_glob_agrees_with_naive(text in arb_pattern_text(), s in arb_subject()) {
        if let Ok((words, _)) = split_words(&text, Separators::Get, 0) {
            let chars: Vec<char> = s.chars().collect();
            for w in words {
                prop_assert_eq!(Glob::compile(&w.body).is_match(&s), naive(&w.body, &chars));
            }
        }
    }

    #[test]
    fn display_round_trips(text in arb_pattern_text()) {
        if let Ok(p) = SimplePattern::parse_get(&text) {
            prop_assert_eq!(get(&p.to_string()), p);
        }
    }
}
