//! Catching the panics of a third-party decoder on malformed input
//! without the panic hook's report: arrow-ipc asserts on some damaged
//! buffers, and a client that sends such bodies would otherwise write a
//! panic report (a backtrace with `RUST_BACKTRACE`) to the server's log
//! per request, while the client gets the 400 that says what went wrong.
//!
//! The process's hook is wrapped once: it stays silent only on a thread
//! inside [`catch_quietly`], and reports every other panic as before.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

static WRAP_HOOK: Once = Once::new();

/// Runs `f`, turning a panic into `Err` with its payload, unreported.
pub fn catch_quietly<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    WRAP_HOOK.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                report(info);
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let out = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    out
}

/// A panic payload's message, when it has one.
pub fn message(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload.downcast_ref::<String>().map(String::as_str).or_else(|| payload.downcast_ref::<&str>().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_is_an_error_and_the_thread_goes_on() {
        let r = catch_quietly(|| -> u32 { panic!("bad buffer at {}", 7) });
        let p = r.expect_err("panicked");
        assert_eq!(message(p.as_ref()), Some("bad buffer at 7"));
        assert_eq!(catch_quietly(|| 5).ok(), Some(5));
        assert!(!QUIET.with(Cell::get), "quiet only inside");
    }
}
