//! The rows of json2's `result.data`: `[time,[value,arp,pa(,count)],...]`
//! per bucket, newest first unless `flip`. Rows are nearly all of a large
//! document's bytes, so they are written by hand (no writer frame per
//! array), and a large document's rows are written on every core: the
//! rows split into contiguous runs, the first written by the calling
//! thread straight into the document and each other one by a scoped
//! thread into its own buffer, appended in order: the bytes are the same
//! as one thread's, and the extra memory is the other runs' share.

use std::sync::OnceLock;

use strata_engine::query::request::Options;
use strata_engine::query::result::{QueryResult, PA_EMPTY};

use super::numbers::{push_round7, push_u64};
use super::writer::Json;
use super::{push_time, row_order};

/// Below this many cells (series × points) the rows are written on the
/// calling thread: about a millisecond of writing, several times what
/// starting threads costs.
const PARALLEL_CELLS: usize = 50_000;

/// Writes the rows as the elements of the open `data` array.
pub(super) fn write(w: &mut Json, r: &QueryResult) {
    // Asked once: std reads the cgroup's CPU quota from /sys each time,
    // tens of microseconds, more than a small document's rows.
    static THREADS: OnceLock<usize> = OnceLock::new();
    let threads = *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    write_with(w, r, threads, PARALLEL_CELLS);
}

fn write_with(w: &mut Json, r: &QueryResult, threads: usize, parallel_cells: usize) {
    let opts = &r.request.options;
    let points = if r.series.is_empty() { 0 } else { r.window.points };
    if threads <= 1 || points * r.series.len() < parallel_cells || points < 2 {
        for i in row_order(points, opts) {
            w.raw(|b| row(b, r, i, opts));
        }
        return;
    }
    let order: Vec<usize> = row_order(points, opts).collect();
    let per = order.len().div_ceil(threads);
    // About a row's size per row; a run grows past it at most once or twice.
    let row_bytes = 16 + r.series.len() * 28;
    let run = |rows: &[usize]| {
        let mut b = Vec::with_capacity(rows.len() * row_bytes);
        for (k, &i) in rows.iter().enumerate() {
            if k > 0 {
                b.push(b',');
            }
            row(&mut b, r, i, opts);
        }
        b
    };
    let mut chunks = order.chunks(per);
    let first = chunks.next().unwrap_or_default();
    std::thread::scope(|scope| {
        let others: Vec<_> =
            chunks.map(|rows| (rows, std::thread::Builder::new().spawn_scoped(scope, move || run(rows)))).collect();
        // The calling thread writes the first run straight into the document.
        for &i in first {
            w.raw(|b| row(b, r, i, opts));
        }
        for (rows, handle) in others {
            let bytes = match handle {
                // A panic in a run is a bug here: re-raised on the caller's
                // thread, it answers 500 like any other panic in a query.
                Ok(h) => h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
                // No thread to be had: the caller writes the run itself.
                Err(_) => run(rows),
            };
            w.raw_elements(&bytes);
        }
    });
}

/// One row: the bucket's time, then each series' point.
fn row(b: &mut Vec<u8>, r: &QueryResult, i: usize, opts: &Options) {
    b.push(b'[');
    push_time(b, r.window.bucket_end(i), opts);
    for s in &r.series {
        b.extend_from_slice(b",[");
        if s.flags[i] & PA_EMPTY == 0 {
            push_round7(b, s.values[i]);
        } else if opts.null2zero {
            b.extend_from_slice(b"0.0");
        } else {
            b.extend_from_slice(b"null");
        }
        b.push(b',');
        push_round7(b, s.arp[i]);
        b.push(b',');
        push_u64(b, u64::from(s.flags[i]));
        if opts.raw {
            b.push(b',');
            push_u64(b, u64::from(s.counts[i]));
        }
        b.push(b']');
    }
    b.push(b']');
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::format::round7;
    use crate::format::test_data::{engine, query, NOW};

    fn rows_of(r: &QueryResult, threads: usize, parallel_cells: usize) -> Value {
        let mut w = Json::new(false, 0);
        w.arr();
        write_with(&mut w, r, threads, parallel_cells);
        w.end();
        serde_json::from_slice(&w.finish()).expect("valid JSON")
    }

    #[test]
    fn rows_on_many_threads_are_the_rows_of_one() {
        let e = engine();
        for options in [json!([]), json!(["flip"]), json!(["null2zero", "raw", "ms"]), json!(["rfc3339", "flip"])] {
            for points in [7, 60, 299] {
                let body = json!({"window": {"after": NOW - 1199, "before": NOW, "points": points},
                                  "aggregations": {"metrics": [{"group_by": ["dimension"], "aggregation": "average"}]},
                                  "format": "json2", "options": options});
                let r = query(&e, body);
                assert_eq!(r.series.len(), 5);
                let one = rows_of(&r, 1, 0);
                let rows = one.as_array().expect("rows");
                assert_eq!(rows.len(), r.window.points, "{options}: a row per bucket");
                // The first row is the newest bucket unless flipped; its cells are the series' values.
                let i = if r.request.options.flip { 0 } else { r.window.points - 1 };
                for (k, s) in r.series.iter().enumerate() {
                    let cell = &rows[0][k + 1];
                    if s.flags[i] & PA_EMPTY == 0 {
                        assert_eq!(cell[0], json!(round7(s.values[i])), "{options}");
                    }
                    assert_eq!(cell[2], json!(s.flags[i]), "{options}");
                }
                for threads in [2, 3, 8] {
                    assert_eq!(rows_of(&r, threads, 0), one, "{options}, {points} points, {threads} threads");
                }
            }
        }
    }

    #[test]
    fn empty_buckets_are_null_or_zero() {
        let e = engine();
        for (options, empty) in [(json!([]), Value::Null), (json!(["null2zero"]), json!(0.0))] {
            let body = json!({"scope": {"dimensions": ["d3"]}, "window": {"after": NOW - 1199, "before": NOW, "points": 20},
                              "format": "json2", "options": options});
            let r = query(&e, body);
            let rows = rows_of(&r, 2, 0);
            let empties = rows.as_array().expect("rows").iter().filter(|row| row[1][0] == empty).count();
            assert_eq!(empties, 5, "{options}: the 300 s gap is 5 of the 60 s buckets");
        }
    }
}
