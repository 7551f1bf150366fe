//! A statement its caller gave up on (disconnect, timeout, revocation)
//! stops where DataFusion yields, which can be seconds later: what it holds
//! (a query slot) stays held until then, and is released then.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{engine, sql_engine};

#[test]
fn an_abandoned_statement_holds_its_slot_until_its_work_ends() {
    let e = engine();
    let sql = sql_engine(&e);
    // About 1.7 G pairs: far longer than the caller waits.
    let q = "SELECT count(*) FROM samples a CROSS JOIN samples b WHERE a.value + b.value > 1e9";
    let held = Arc::new(());
    let watch = Arc::downgrade(&held);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let cancel = Arc::new(AtomicBool::new(false));
    let gave_up = rt.block_on(async {
        let work = sql.run_holding(q, None, cancel.clone(), held);
        tokio::time::timeout(Duration::from_millis(1500), work).await
    });
    assert!(gave_up.is_err(), "the statement ended before the caller gave up");
    let left = Instant::now();
    // The caller's future is gone; the work is not (it is inside a batch).
    assert!(watch.upgrade().is_some(), "released while the work still ran");
    while watch.upgrade().is_some() {
        assert!(left.elapsed() < Duration::from_secs(120), "still held two minutes after the caller left");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_finished_statement_releases_what_it_held() {
    let e = engine();
    let sql = sql_engine(&e);
    let held = Arc::new(());
    let watch = Arc::downgrade(&held);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let answer =
        rt.block_on(sql.run_holding("SELECT count(*) FROM metrics", None, Arc::new(AtomicBool::new(false)), held));
    assert_eq!(answer.expect("answer").rows, 1);
    // The task drops its copy as it ends, which the answer can overtake.
    let t = Instant::now();
    while watch.upgrade().is_some() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(watch.upgrade().is_none());
}
