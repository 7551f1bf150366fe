//! A guard before planning. DataFusion plans, optimises and evaluates an
//! expression tree by recursion, a few stack frames per level, so a short
//! statement of chained operators (a hundred `OR`s, `1+1+...`, nested
//! `CASE`, `UNION ALL`) overflowed a SQL thread's stack, and a stack
//! overflow aborts the whole server. Two bounds keep that out of reach:
//! the SQL runtime's threads get [`STACK_BYTES`] of stack (address space,
//! touched only as deep as a statement goes), and a statement with more
//! than [`MAX_NESTING_TOKENS`] operators, nesting keywords and opening
//! parentheses is refused before it is planned, far below the depth that
//! stack holds even in a debug build (about 20 KiB a level there).

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

use crate::SqlError;

/// Stack of each SQL runtime thread.
pub const STACK_BYTES: usize = 256 << 20;

/// Most tokens that may each add a level to a statement's trees. `IN`
/// lists and select lists (commas) do not count.
pub const MAX_NESTING_TOKENS: usize = 2_000;

/// Refuses a statement whose trees could nest past what the stack holds.
/// A statement that does not tokenize is left to the planner, whose error
/// names the problem.
pub fn check(sql: &str) -> Result<(), SqlError> {
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize() else { return Ok(()) };
    let mut nesting = 0;
    let mut prev = &Token::Whitespace(Whitespace::Space);
    for t in tokens.iter().filter(|t| !matches!(t, Token::Whitespace(_))) {
        // A sign after `(` or `,` is a negative literal of a list, which
        // adds no level: `IN (-1, -2, ...)`.
        let sign = matches!(t, Token::Minus | Token::Plus) && matches!(prev, Token::LParen | Token::Comma);
        nesting += usize::from(nests(t) && !sign);
        prev = t;
    }
    if nesting > MAX_NESTING_TOKENS {
        return Err(SqlError::Invalid(format!(
            "the statement has {nesting} operators, nesting keywords and parentheses, over the limit of \
             {MAX_NESTING_TOKENS}: split it, or use IN (...) lists instead of chains of OR"
        )));
    }
    Ok(())
}

fn nests(t: &Token) -> bool {
    match t {
        Token::Word(w) => matches!(
            w.keyword,
            Keyword::OR
                | Keyword::AND
                | Keyword::NOT
                | Keyword::CASE
                | Keyword::WHEN
                | Keyword::UNION
                | Keyword::INTERSECT
                | Keyword::EXCEPT
                | Keyword::SELECT
        ),
        Token::Plus
        | Token::Minus
        | Token::Mul
        | Token::Div
        | Token::Mod
        | Token::StringConcat
        | Token::LParen
        | Token::Eq
        | Token::Neq
        | Token::Lt
        | Token::Gt
        | Token::LtEq
        | Token::GtEq
        | Token::Ampersand
        | Token::Pipe
        | Token::Caret => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_past_the_limit_are_refused_and_lists_are_not() {
        let ors = |n: usize| format!("SELECT 1 WHERE {}", vec!["'a'='b'"; n].join(" OR "));
        assert!(check(&ors(900)).is_ok());
        let e = check(&ors(2_000)).expect_err("too many");
        assert!(e.to_string().contains("over the limit of 2000"), "{e}");
        let list = format!("SELECT 1 WHERE 1 IN ({})", vec!["7"; 20_000].join(", "));
        assert!(check(&list).is_ok(), "an IN list does not nest");
        let negative = format!("SELECT 1 WHERE 1 IN ({})", vec!["-7"; 20_000].join(", "));
        assert!(check(&negative).is_ok(), "nor does one of negative numbers");
        assert!(check(&format!("SELECT {}", vec!["1"; 2_500].join(" - "))).is_err(), "a chain of minus does");
        // Operators inside string literals are text.
        assert!(check(&format!("SELECT '{}'", "+".repeat(10_000))).is_ok());
    }
}
