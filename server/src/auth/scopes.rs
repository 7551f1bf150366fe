//! Scopes: fine-grained `strata:{resource}:{verb}` (with `*` wildcards),
//! Netdata's bundle names (`scope:all`, `scope:grafana-plugin`,
//! `scope:agent-ui`, `scope:mcp`) and role presets (`viewer`, `editor`,
//! `admin`, `metrics-publisher`). Bundles never grant token management:
//! that needs an explicit `strata:tokens:*` grant or the admin role.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    Data,
    Metadata,
    Ingest,
    Tokens,
    Admin,
    Mcp,
    Stream,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verb {
    Read,
    Write,
    Delete,
}

pub const RESOURCES: [Resource; 7] = [
    Resource::Data,
    Resource::Metadata,
    Resource::Ingest,
    Resource::Tokens,
    Resource::Admin,
    Resource::Mcp,
    Resource::Stream,
];
pub const VERBS: [Verb; 3] = [Verb::Read, Verb::Write, Verb::Delete];

impl Resource {
    fn parse(s: &str) -> Option<Resource> {
        RESOURCES.iter().copied().find(|r| r.name() == s)
    }
    pub fn name(self) -> &'static str {
        match self {
            Resource::Data => "data",
            Resource::Metadata => "metadata",
            Resource::Ingest => "ingest",
            Resource::Tokens => "tokens",
            Resource::Admin => "admin",
            Resource::Mcp => "mcp",
            Resource::Stream => "stream",
        }
    }
}

impl Verb {
    fn parse(s: &str) -> Option<Verb> {
        VERBS.iter().copied().find(|v| v.name() == s)
    }
    pub fn name(self) -> &'static str {
        match self {
            Verb::Read => "read",
            Verb::Write => "write",
            Verb::Delete => "delete",
        }
    }
}

/// One grant: a resource (or all) and a verb (or all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Grant {
    pub resource: Option<Resource>,
    pub verb: Option<Verb>,
}

impl Grant {
    fn covers(&self, r: Resource, v: Verb) -> bool {
        self.resource.is_none_or(|x| x == r) && self.verb.is_none_or(|x| x == v)
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.resource, self.verb) {
            (None, _) => write!(f, "strata:*"),
            (Some(r), None) => write!(f, "strata:{}:*", r.name()),
            (Some(r), Some(v)) => write!(f, "strata:{}:{}", r.name(), v.name()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("unknown scope '{0}' (use strata:{{resource}}:{{verb}}, scope:all, scope:grafana-plugin, scope:agent-ui, scope:mcp, viewer, editor, admin, metrics-publisher)")]
    Unknown(String),
    #[error("a token needs 1 to 32 scopes, got {0}")]
    Count(usize),
}

/// A parsed set of scopes with what they grant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scopes {
    /// As given (normalised), for display and storage.
    pub names: Vec<String>,
    /// Grants from explicit scopes and presets.
    explicit: Vec<Grant>,
    /// Grants from Netdata bundles.
    bundled: Vec<Grant>,
    /// `scope:all`: everything its creator has (resolved at creation).
    pub all: bool,
}

fn g(resource: Resource, verb: Verb) -> Grant {
    Grant { resource: Some(resource), verb: Some(verb) }
}

fn reads() -> Vec<Grant> {
    RESOURCES.iter().filter(|r| **r != Resource::Tokens).map(|&r| g(r, Verb::Read)).collect()
}

impl Scopes {
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Scopes, ScopeError> {
        if items.is_empty() || items.len() > 32 {
            return Err(ScopeError::Count(items.len()));
        }
        let mut s = Scopes::default();
        for item in items {
            let name = item.as_ref().trim();
            let bad = || ScopeError::Unknown(name.to_string());
            match name {
                "scope:all" => {
                    s.all = true;
                    s.bundled.push(Grant { resource: None, verb: None });
                }
                "scope:grafana-plugin" => {
                    s.bundled.extend([g(Resource::Data, Verb::Read), g(Resource::Metadata, Verb::Read)])
                }
                "scope:agent-ui" => s.bundled.extend(reads()),
                "scope:mcp" => s.bundled.extend([
                    g(Resource::Mcp, Verb::Read),
                    g(Resource::Data, Verb::Read),
                    g(Resource::Metadata, Verb::Read),
                ]),
                "viewer" => s.explicit.extend([g(Resource::Data, Verb::Read), g(Resource::Metadata, Verb::Read)]),
                "editor" => s.explicit.extend([
                    g(Resource::Data, Verb::Read),
                    g(Resource::Metadata, Verb::Read),
                    g(Resource::Metadata, Verb::Write),
                    g(Resource::Ingest, Verb::Write),
                    g(Resource::Stream, Verb::Read),
                ]),
                "admin" => s.explicit.push(Grant { resource: None, verb: None }),
                "metrics-publisher" => s.explicit.push(g(Resource::Ingest, Verb::Write)),
                _ => {
                    let rest = name.strip_prefix("strata:").ok_or_else(bad)?;
                    let grant = if rest == "*" {
                        Grant { resource: None, verb: None }
                    } else {
                        let (r, v) = rest.split_once(':').ok_or_else(bad)?;
                        let resource = Some(Resource::parse(r).ok_or_else(bad)?);
                        let verb = if v == "*" { None } else { Some(Verb::parse(v).ok_or_else(bad)?) };
                        Grant { resource, verb }
                    };
                    s.explicit.push(grant);
                }
            }
            if !s.names.iter().any(|n| n == name) {
                s.names.push(name.to_string());
            }
        }
        Ok(s)
    }

    /// May this set do `verb` on `resource`? Bundles never grant tokens.
    pub fn allows(&self, r: Resource, v: Verb) -> bool {
        self.explicit.iter().any(|gr| gr.covers(r, v))
            || (r != Resource::Tokens && self.bundled.iter().any(|gr| gr.covers(r, v)))
    }

    /// Every (resource, verb) this set allows.
    pub fn effective(&self) -> Vec<(Resource, Verb)> {
        RESOURCES.iter().flat_map(|&r| VERBS.iter().map(move |&v| (r, v))).filter(|&(r, v)| self.allows(r, v)).collect()
    }

    /// Is every permission of `self` also held by `other`?
    pub fn within(&self, other: &Scopes) -> bool {
        self.effective().iter().all(|&(r, v)| other.allows(r, v))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn fine_grained_and_wildcards() {
        let s = Scopes::parse(&["strata:data:read", "strata:ingest:*"]).expect("ok");
        assert!(s.allows(Resource::Data, Verb::Read));
        assert!(!s.allows(Resource::Data, Verb::Write));
        assert!(s.allows(Resource::Ingest, Verb::Delete));
        assert!(Scopes::parse(&["strata:*"]).expect("ok").allows(Resource::Tokens, Verb::Write));
    }

    #[test]
    fn bundles_and_presets() {
        let graf = Scopes::parse(&["scope:grafana-plugin"]).expect("ok");
        assert!(graf.allows(Resource::Data, Verb::Read) && graf.allows(Resource::Metadata, Verb::Read));
        assert!(!graf.allows(Resource::Ingest, Verb::Write));
        let all = Scopes::parse(&["scope:all"]).expect("ok");
        assert!(all.allows(Resource::Ingest, Verb::Write));
        assert!(!all.allows(Resource::Tokens, Verb::Write), "bundles never manage tokens");
        let ui = Scopes::parse(&["scope:agent-ui"]).expect("ok");
        assert!(ui.allows(Resource::Stream, Verb::Read) && !ui.allows(Resource::Data, Verb::Write));
        let pubr = Scopes::parse(&["metrics-publisher"]).expect("ok");
        assert_eq!(pubr.effective(), vec![(Resource::Ingest, Verb::Write)]);
        assert!(Scopes::parse(&["admin"]).expect("ok").allows(Resource::Tokens, Verb::Delete));
        assert!(pubr.within(&Scopes::parse(&["editor"]).expect("ok")));
        assert!(!Scopes::parse(&["editor"]).expect("ok").within(&pubr));
    }

    #[test]
    fn bad_scopes() {
        for bad in ["strata:data", "strata:planets:read", "strata:data:eat", "root", "scope:everything"] {
            assert!(matches!(Scopes::parse(&[bad]), Err(ScopeError::Unknown(_))), "{bad}");
        }
        assert_eq!(Scopes::parse::<&str>(&[]), Err(ScopeError::Count(0)));
        let many: Vec<String> = (0..33).map(|_| "viewer".to_string()).collect();
        assert_eq!(Scopes::parse(&many), Err(ScopeError::Count(33)));
    }

    proptest! {
        #[test]
        fn scope_parser_never_panics(v in prop::collection::vec("[a-z:*_-]{0,24}", 0..40)) {
            let _ = Scopes::parse(&v);
        }
    }
}
