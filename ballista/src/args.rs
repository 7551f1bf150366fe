//! A minimal `--flag value` parser for the two binaries (no clap: the
//! flags are few).

use std::collections::HashMap;
use std::str::FromStr;

/// `--name value` pairs; `--help` is reported as `help`.
#[derive(Debug, Default)]
pub struct Args {
    values: HashMap<String, String>,
    pub help: bool,
}

impl Args {
    /// Parses `args` (without the program name), accepting only `known` flags.
    pub fn parse(args: impl IntoIterator<Item = String>, known: &[&str]) -> Result<Args, String> {
        let mut out = Args::default();
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            if a == "--help" || a == "-h" {
                out.help = true;
                continue;
            }
            let Some(name) = a.strip_prefix("--") else { return Err(format!("unexpected argument {a:?}")) };
            let (name, value) = match name.split_once('=') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None => (name.to_string(), it.next().ok_or_else(|| format!("--{name} needs a value"))?),
            };
            if !known.contains(&name.as_str()) {
                return Err(format!("unknown flag --{name}"));
            }
            out.values.insert(name, value);
        }
        Ok(out)
    }

    /// The value of `--name` parsed as `T`, or `default`.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        match self.values.get(name) {
            Some(v) => v.parse().map_err(|e| format!("--{name} {v:?}: {e}")),
            None => Ok(default),
        }
    }

    /// The value of `--name`, if given.
    pub fn opt(&self, name: &str) -> Option<String> {
        self.values.get(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms_and_rejects_unknown_flags() {
        let a = Args::parse(["--port".to_string(), "7".to_string(), "--bind=::1".to_string()], &["port", "bind"])
            .expect("parses");
        assert_eq!(a.get("port", 0u16), Ok(7));
        assert_eq!(a.get("bind", String::new()), Ok("::1".to_string()));
        assert_eq!(a.get("missing", 3u16), Ok(3));
        assert!(Args::parse(["--nope".to_string(), "1".to_string()], &["port"]).is_err());
        assert!(Args::parse(["--port".to_string()], &["port"]).is_err());
    }
}
