//! What a statement holds (a query slot) lives in its work, not in the
//! caller's future: an abandoned statement keeps it until DataFusion's
//! tasks stop (at their next batch), and every statement releases it.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{engine, sql_engine, ts, T0};

#[test]
fn an_abandoned_statement_holds_its_slot_until_its_work_ends() {
    let e = engine();
    let sql = sql_engine(&e);
    // A cross join of every sample with 400 of them: seconds of work in a
    // debug build, in batches, beyond what the caller waits.
    let q = format!(
        "SELECT count(*) FROM samples a CROSS JOIN (SELECT value FROM samples WHERE ts <= {}) b \
         WHERE a.value + b.value > 1e9",
        ts(T0 + 100)
    );
    let held = Arc::new(());
    let watch = Arc::downgrade(&held);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let gave_up = rt.block_on(async {
        let work = sql.run_holding(&q, None, Arc::new(AtomicBool::new(false)), held);
        tokio::time::timeout(Duration::from_millis(300), work).await
    });
    if gave_up.is_ok() {
        return; // a machine fast enough to finish first: nothing to check
    }
    assert!(watch.upgrade().is_some(), "released while the work still ran");
    let left = Instant::now();
    while watch.upgrade().is_some() {
        assert!(left.elapsed() < Duration::from_secs(90), "still held 90 s after the caller left");
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
