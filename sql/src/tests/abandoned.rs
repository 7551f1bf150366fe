//! What a statement holds (a query slot) lives in its work, not in the
//! caller's future: released when the work ends. (That an abandoned
//! statement keeps it until its current batch ends was checked by hand:
//! how long a batch computes is DataFusion's, minutes for a cross join in
//! a debug build, so no test here waits for it.)

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{engine, sql_engine};

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
