use std::fs;
use std::path::PathBuf;

use proptest::prelude::*;

use super::store::{allowlist_of, parse_authorization, NewToken, TokenStore};
use super::token;
use crate::error::ApiError;

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("strata-auth-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).expect("dir");
    d
}

#[test]
fn first_start_creates_admin_token_once() {
    let d = tmpdir("first");
    let (store, created) = TokenStore::open(&d, 1).expect("open");
    let tok = created.expect("created on first start");
    assert_eq!(fs::read_to_string(d.join("admin.token")).expect("file").trim(), tok);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(d.join("admin.token")).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(!fs::read_to_string(d.join("tokens/tokens.json")).expect("json").contains(&tok));
    let p = store.authenticate(Some(&format!("Bearer {tok}")), None, 2).expect("auth");
    assert!(p.admin);
    let (again, created2) = TokenStore::open(&d, 2).expect("reopen");
    assert!(created2.is_none());
    assert!(again.authenticate(Some(&format!("Bearer {tok}")), None, 3).is_ok());
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn created_tokens_expire_revoke_and_survive_reopen() {
    let d = tmpdir("create");
    let (store, admin) = TokenStore::open(&d, 100).expect("open");
    let admin = store.authenticate(Some(&format!("Bearer {}", admin.expect("admin"))), None, 100).expect("admin");
    let req = NewToken {
        name: "grafana".into(),
        scopes: vec!["scope:grafana-plugin".into()],
        seconds_to_live: Some(60),
        ..Default::default()
    };
    let (rec, plain) = store.create(&admin, req, 100).expect("create");
    assert_eq!(rec.expires_at, Some(160));
    assert!(!fs::read_to_string(d.join("tokens/tokens.json")).expect("json").contains(&plain));
    let h = format!("Bearer {plain}");
    assert!(store.authenticate(Some(&h), Some("127.0.0.1"), 159).is_ok());
    assert!(store.authenticate(Some(&h), None, 160).is_err(), "expired");
    let (reopened, _) = TokenStore::open(&d, 101).expect("reopen");
    assert!(reopened.authenticate(Some(&h), None, 120).is_ok());
    reopened.revoke(&rec.id, 121).expect("revoke");
    assert!(reopened.authenticate(Some(&h), None, 122).is_err(), "revoked");
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn last_use_is_written_by_flush_not_per_request() {
    let d = tmpdir("usage");
    let (store, admin) = TokenStore::open(&d, 100).expect("open");
    let h = format!("Bearer {}", admin.expect("admin"));
    let last_used = |s: &TokenStore| s.get("admin").map(|r| (r.last_used_at, r.last_used_ip));
    assert!(!store.flush_usage().expect("flush"), "nothing used yet");
    store.authenticate(Some(&h), Some("10.0.0.7"), 150).expect("auth");
    assert_eq!(last_used(&store), Some((Some(150), Some("10.0.0.7".into()))), "recorded in memory at once");
    let (before_flush, _) = TokenStore::open(&d, 151).expect("reopen");
    assert_eq!(last_used(&before_flush), Some((None, None)), "not written per request");
    assert!(store.flush_usage().expect("flush"), "a use is pending");
    assert!(!store.flush_usage().expect("flush"), "written once");
    let (after_flush, _) = TokenStore::open(&d, 152).expect("reopen");
    assert_eq!(last_used(&after_flush), Some((Some(150), Some("10.0.0.7".into()))), "survives a reopen");
    store.authenticate(Some(&h), Some("10.0.0.7"), 150).expect("same second, same address");
    assert!(!store.flush_usage().expect("flush"), "an unchanged use writes nothing");
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn concurrent_creates_and_usage_flushes_all_land_in_the_file() {
    let d = tmpdir("concurrent");
    let (store, admin) = TokenStore::open(&d, 100).expect("open");
    let h = format!("Bearer {}", admin.expect("admin"));
    let admin = store.authenticate(Some(&h), None, 100).expect("admin");
    std::thread::scope(|s| {
        for t in 0..4 {
            let (store, admin, h) = (&store, &admin, &h);
            s.spawn(move || {
                for i in 0..25 {
                    let req =
                        NewToken { name: format!("t{t}-{i}"), scopes: vec!["viewer".into()], ..Default::default() };
                    store.create(admin, req, 101).expect("every create is written");
                    store.authenticate(Some(h), Some(&format!("10.0.{t}.{i}")), 102).expect("auth");
                    store.flush_usage().expect("every flush is written");
                }
            });
        }
    });
    let (again, _) = TokenStore::open(&d, 103).expect("reopen");
    assert_eq!(again.list().len(), 1 + 4 * 25, "the file holds every token");
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn records_this_version_cannot_use_are_kept_not_dropped() {
    let d = tmpdir("unreadable");
    let (store, admin) = TokenStore::open(&d, 100).expect("open");
    let admin = store.authenticate(Some(&format!("Bearer {}", admin.expect("admin"))), None, 100).expect("admin");
    drop(store);
    let path = d.join("tokens/tokens.json");
    let mut records: serde_json::Value = serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
    let future = serde_json::json!({
        "id": "tok_future", "name": "from a newer strata", "scopes": ["strata:future:read"],
        "sha256": "00".repeat(32), "created_at": 50
    });
    records.as_array_mut().expect("array").push(future);
    fs::write(&path, serde_json::to_vec(&records).expect("encode")).expect("write");

    let (store, _) = TokenStore::open(&d, 101).expect("reopen");
    assert_eq!(store.get("tok_future").map(|r| r.name), Some("from a newer strata".into()), "listed");
    let req = NewToken { name: "new".into(), scopes: vec!["viewer".into()], ..Default::default() };
    store.create(&admin, req, 102).expect("create rewrites the file");
    let (again, _) = TokenStore::open(&d, 103).expect("reopen");
    let ids: Vec<String> = again.list().into_iter().map(|r| r.id).collect();
    assert!(ids.contains(&"tok_future".to_string()) && ids.len() == 3, "{ids:?}");
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn no_token_creates_more_power_than_itself() {
    let d = tmpdir("power");
    let (store, admin) = TokenStore::open(&d, 1).expect("open");
    let admin = store.authenticate(Some(&format!("Bearer {}", admin.expect("admin"))), None, 1).expect("admin");
    let mk = |scopes: &[&str], nodes: &[&str]| NewToken {
        name: "t".into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        nodes: nodes.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let (_, manager) = store.create(&admin, mk(&["strata:tokens:*", "viewer"], &["web-*"]), 1).expect("manager");
    let manager = store.authenticate(Some(&format!("Bearer {manager}")), None, 1).expect("auth");
    assert!(store.create(&manager, mk(&["viewer"], &["web-1"]), 1).is_ok());
    assert!(store.create(&manager, mk(&["editor"], &["web-1"]), 1).is_err(), "more scopes");
    assert!(store.create(&manager, mk(&["viewer"], &["db-1"]), 1).is_err(), "outside allowlist");
    assert!(store.create(&manager, mk(&["viewer"], &[]), 1).is_err(), "dropping the allowlist");
    // An entry of two words is two nodes: `web-*` matches its whole text,
    // not `db-9`.
    assert!(store.create(&manager, mk(&["viewer"], &["web-1|db-9"]), 1).is_err(), "a second word outside");
    assert!(store.create(&manager, mk(&["viewer"], &["!db-9"]), 1).is_err(), "a negation");
    assert!(store.create(&manager, mk(&["viewer"], &["web-1|web-2"]), 1).is_ok(), "two nodes inside");
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn authorization_header_shapes() {
    let t = token::generate().expect("rng");
    assert_eq!(parse_authorization(Some(&format!("Bearer {t}"))).expect("ok"), t);
    assert_eq!(parse_authorization(Some(&format!("bearer  {t} "))).expect("ok"), t);
    for bad in
        [None, Some(""), Some("Bearer"), Some("Basic abc"), Some("Bearer strata_short"), Some(&*format!("Token {t}"))]
    {
        assert!(parse_authorization(bad).is_err(), "{bad:?}");
    }
}

proptest! {
    #[test]
    fn authorization_parser_never_panics(h in ".{0,80}") {
        let _ = parse_authorization(Some(&h));
    }
}

/// An allowlist that names no node is refused at creation (it used to be
/// stored as `[""]` and match every node), and one stored that way before
/// matches none.
#[test]
fn an_allowlist_naming_no_node_is_refused_and_fails_closed() {
    let d = tmpdir("emptyallow");
    let (store, admin) = TokenStore::open(&d, 1).expect("open");
    let admin = store.authenticate(Some(&format!("Bearer {}", admin.expect("admin"))), None, 1).expect("admin");
    for nodes in [vec![""], vec!["  "], vec!["web-1", ""], vec!["|"]] {
        let req = NewToken {
            name: "t".into(),
            scopes: vec!["viewer".into()],
            nodes: nodes.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        assert!(matches!(store.create(&admin, req, 1), Err(ApiError::BadRequest(_))), "{nodes:?}");
    }
    let stored = allowlist_of(&[String::new()]).expect("a listed allowlist");
    assert!(!stored.matches("web-1") && !stored.matches(""), "a stored [\"\"] matches no node");
    assert!(allowlist_of(&[]).is_none(), "no list: every node");
    assert!(allowlist_of(&["web-*".into()]).is_some_and(|p| p.matches("web-1") && !p.matches("db-1")));
    let _ = fs::remove_dir_all(&d);
}

/// A token the file could not take is taken back: the API does not list
/// it, no later save writes it, and a full disk is a 507.
#[test]
fn a_token_that_was_not_saved_does_not_exist() {
    let d = tmpdir("unsaved");
    let (store, admin) = TokenStore::open(&d, 100).expect("open");
    let admin = store.authenticate(Some(&format!("Bearer {}", admin.expect("admin"))), None, 100).expect("admin");
    let new =
        |name: &str| NewToken { name: name.into(), scopes: vec!["strata:data:read".into()], ..Default::default() };
    // The save goes through tokens.tmp: a directory there makes it fail.
    let tmp = d.join("tokens/tokens.tmp");
    fs::create_dir_all(&tmp).expect("block the save");
    let err = store.create(&admin, new("ghost"), 100).expect_err("not saved");
    assert!(matches!(err, ApiError::Internal(_)), "{err:?}");
    assert!(err.to_string().contains("the token was not created"), "{err}");
    assert!(store.list().iter().all(|r| r.name != "ghost"), "taken back");
    fs::remove_dir_all(&tmp).expect("unblock");
    store.create(&admin, new("ok"), 101).expect("saved");
    let (reopened, _) = TokenStore::open(&d, 102).expect("reopen");
    let names: Vec<String> = reopened.list().into_iter().map(|r| r.name).collect();
    assert!(names.contains(&"ok".to_string()) && !names.contains(&"ghost".to_string()), "{names:?}");
    let full = super::store::StoreError::Io {
        action: "write",
        path: tmp.clone(),
        source: std::io::Error::from(std::io::ErrorKind::StorageFull),
    };
    let err = super::store::not_saved(full, "the token was not created");
    assert_eq!(err.status(), axum::http::StatusCode::INSUFFICIENT_STORAGE, "{err}");
    let _ = fs::remove_dir_all(&d);
}
