//! Arrow IPC stream bytes -> [`IngestBatch`], checking every row.

use std::collections::HashMap;

use arrow_array::Array;
use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;

use super::columns::Columns;
use crate::error::{EngineError, Result};
use crate::ingest::validate::{check_name, check_point, MAX_T, MAX_UPDATE_EVERY};
use crate::ingest::{IngestBatch, Point, SeriesSpec};

/// A decoded stream: the batch, and where its series came from.
#[derive(Debug, Default)]
pub struct Decoded {
    pub batch: IngestBatch,
    pub rows: RowMap,
}

/// For each series of a decoded batch, where its points came from: for
/// each run of adjacent stream rows that named it, `(its first point's
/// index in the series, its first row, its rows)`, oldest first. So errors found
/// later (by `Engine::ingest`) can name a row, not a series or a point.
#[derive(Debug, Default, Clone)]
pub struct RowMap {
    runs: Vec<Vec<(usize, u64, usize)>>,
}

impl RowMap {
    /// Rewrites a `series[i]...` error path of this batch to `rows[r]...`:
    /// the row of point `j` for `series[i].points[j]`, else the series'
    /// first row; other errors pass through.
    pub fn locate(&self, e: EngineError) -> EngineError {
        let EngineError::InvalidBatch { path, message } = e else { return e };
        let found = path.strip_prefix("series[").and_then(|rest| rest.split_once(']')).and_then(|(i, rest)| {
            let runs = self.runs.get(i.parse::<usize>().ok()?)?;
            let point = rest.strip_prefix(".points[").and_then(|p| p.split_once(']')?.0.parse::<usize>().ok());
            let first = runs.first()?.1;
            let row = match point {
                Some(j) => match runs[..runs.partition_point(|r| r.0 <= j)].last() {
                    Some(&(from, row, len)) if j - from < len => row + (j - from) as u64,
                    _ => first,
                },
                None => first,
            };
            Some((row, if point.is_some() { "" } else { rest }))
        });
        let message = self.rows_in(&message);
        match found {
            Some((r, rest)) => EngineError::batch(format!("rows[{r}]{rest}"), message),
            None => EngineError::InvalidBatch { path, message },
        }
    }

    /// `message` with each `series[k]` it names (another series an error
    /// compares with) written as that series' first row, `rows[r]`.
    fn rows_in(&self, message: &str) -> String {
        let mut out = String::with_capacity(message.len());
        let mut rest = message;
        while let Some(at) = rest.find("series[") {
            out.push_str(&rest[..at]);
            let after = &rest[at + "series[".len()..];
            let named = after.split_once(']').and_then(|(k, tail)| {
                let row = self.runs.get(k.parse::<usize>().ok()?)?.first()?.1;
                Some((row, tail))
            });
            match named {
                Some((row, tail)) => {
                    out.push_str(&format!("rows[{row}]"));
                    rest = tail;
                }
                None => {
                    out.push_str("series[");
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
}

fn disagrees(path: String, first: Option<i64>) -> EngineError {
    EngineError::batch(path, format!("disagrees with this metric's first row ({}s)", first.unwrap_or(1)))
}

fn stream_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::batch("stream", format!("not a valid Arrow IPC stream: {e}"))
}

/// Decodes a whole Arrow IPC stream (schema, optional dictionaries, record
/// batches, optional end marker). Nothing is applied; see the module docs.
/// An owned body (`bytes::Bytes`, `Vec<u8>`) is read in place; a borrowed
/// slice is copied once.
pub fn decode_stream(bytes: impl Into<Buffer>) -> Result<Decoded> {
    decode_with(bytes.into(), Builder::default())
}

/// [`decode_stream`] reading every row on its own (see `Builder::row_by_row`).
#[cfg(test)]
pub(super) fn decode_row_by_row(bytes: &[u8]) -> Result<Decoded> {
    decode_with(bytes.into(), Builder { row_by_row: true, ..Builder::default() })
}

fn decode_with(bytes: Buffer, out: Builder) -> Result<Decoded> {
    // arrow-ipc 59 asserts (panics) on some malformed buffer layouts instead
    // of returning an error; a damaged body must be a 400, not a crash.
    crate::quiet_panic::catch_quietly(|| decode_unguarded(bytes, out)).unwrap_or_else(|p| {
        let why = crate::quiet_panic::message(p.as_ref());
        // One line, for whoever debugs a decoder panic of strata's own code.
        tracing::debug!(panic = why.unwrap_or("?"), "Arrow ingest body: the decoder panicked");
        Err(stream_err(format!("damaged stream ({})", why.unwrap_or("the Arrow decoder gave up"))))
    })
}

fn decode_unguarded(mut buf: Buffer, mut out: Builder) -> Result<Decoded> {
    let mut decoder = StreamDecoder::new();
    while !buf.is_empty() {
        let before = buf.len();
        match decoder.decode(&mut buf).map_err(stream_err)? {
            Some(rb) => out.add(&rb)?,
            // The decoder stops consuming after the end-of-stream marker.
            None if buf.len() == before => {
                return Err(stream_err(format!("{} bytes after the end-of-stream marker", buf.len())));
            }
            None => {}
        }
    }
    decoder.finish().map_err(stream_err)?;
    if decoder.schema().is_none() {
        return Err(stream_err("the body is empty (no schema message)"));
    }
    Ok(Decoded { batch: out.batch, rows: RowMap { runs: out.runs } })
}

#[derive(Default)]
struct Builder {
    batch: IngestBatch,
    /// [`RowMap`]'s runs, per series.
    runs: Vec<Vec<(usize, u64, usize)>>,
    /// The series by their names: see [`SeriesIndex`].
    index: SeriesIndex,
    /// The same by the names' dictionary keys in the record batch being
    /// read ([`Columns::name_keys`]), so that a metric's later runs (rows
    /// in time order: every row a run) cost no string allocation or
    /// hashing. Keys hold within one record batch only (a stream may
    /// replace its dictionaries between them), so it is cleared for each.
    by_keys: HashMap<[usize; 4], usize, foldhash::fast::RandomState>,
    rows: u64,
    /// Test knob: every row read as a run of its own, through the checks of
    /// a run's first row and the lookup by strings (the reference the run
    /// path is compared with).
    #[cfg(test)]
    row_by_row: bool,
}

impl Builder {
    /// Reads a record batch as runs of rows that name the same metric:
    /// a run's first row is checked in full and finds its series, the rest
    /// only have their points checked and appended, column by column.
    fn add(&mut self, rb: &arrow_array::RecordBatch) -> Result<()> {
        let c = Columns::of(rb)?;
        let n = rb.num_rows();
        self.by_keys.clear();
        let mut i = 0;
        while i < n {
            let end = c.same_names_until(i, n);
            #[cfg(test)]
            let end = if self.row_by_row { i + 1 } else { end };
            let k = self.first_row(&c, i, end - i)?;
            self.rest_of_run(&c, k, i + 1..end)?;
            let first_point = self.batch.series[k].points.len() - (end - i);
            let (row, len) = (self.rows + i as u64, end - i);
            // Runs that continue each other (as rows read one by one do) are one.
            match self.runs[k].last_mut() {
                Some(r) if r.0 + r.2 == first_point && r.1 + r.2 as u64 == row => r.2 += len,
                _ => self.runs[k].push((first_point, row, len)),
            }
            i = end;
        }
        self.rows += n as u64;
        Ok(())
    }

    /// Checks row `i` (names, time, value, update_every), finds or creates
    /// its series and appends its point; returns the series. `run` rows
    /// (this one first) are about to be appended to it.
    fn first_row(&mut self, c: &Columns, i: usize, run: usize) -> Result<usize> {
        let row = self.rows + i as u64;
        let at = |col: &str| format!("rows[{row}].{col}");
        let null = |col: &str| EngineError::batch(at(col), format!("'{col}' must not be null"));
        let keys = c.name_keys(i);
        // The reference read finds every row's series by its strings.
        #[cfg(test)]
        let keys = keys.filter(|_| !self.row_by_row);
        // Equal keys, equal strings: the series (and its context) as found
        // before, whose names were checked then (so none is null here).
        // `Err`: no series known yet, and the names that find or make one.
        let found = match keys.and_then(|key| self.by_keys.get(&key).copied()) {
            Some(k) => Ok(k),
            None => {
                let node = c.node.as_ref().and_then(|n| n.get(i));
                let context = c.context.get(i).ok_or_else(|| null("context"))?;
                let dimension = c.dimension.get(i).ok_or_else(|| null("dimension"))?;
                let instance = c.instance.as_ref().and_then(|n| n.get(i)).unwrap_or(context);
                Err((node, context, instance, dimension))
            }
        };
        let t = c.ts.get(i).ok_or_else(|| null("ts"))?;
        let ue = c.update_every.as_ref().and_then(|a| a.get(i));
        let point = self.point(c, i, t);
        check_point(|| at("ts"), || at("value"), &point)?;
        let k = match found {
            Ok(k) => k,
            Err((node, context, instance, dimension)) => {
                let k = self.series_for(c, i, row, node, context, instance, dimension, ue)?;
                if let Some(key) = keys {
                    self.by_keys.insert(key, k);
                }
                k
            }
        };
        let points = &mut self.batch.series[k].points;
        if points.is_empty() {
            points.reserve_exact(run);
        }
        self.push(k, point, ue, || at("update_every"))?;
        Ok(k)
    }

    /// Appends rows `run` (all naming series `k`), checking each row's time,
    /// value and update_every as [`Builder::first_row`] does. The rows are
    /// checked in one pass and appended in another; the first bad row is
    /// then checked again in full for its error, so the error is the one a
    /// row-by-row read gives.
    fn rest_of_run(&mut self, c: &Columns, k: usize, run: std::ops::Range<usize>) -> Result<()> {
        let (ts, ts_nulls) = c.ts.raw();
        let (values, value_nulls) = (c.value.values(), c.value.nulls());
        let s = &mut self.batch.series[k];
        let ok = |i: usize| {
            ts_nulls.is_none_or(|b| b.is_valid(i))
                && (0..MAX_T).contains(&ts[i])
                && (values[i].is_finite() || value_nulls.is_some_and(|b| b.is_null(i)))
        };
        let bad_point = run.clone().find(|&i| !ok(i));
        // A row may leave update_every null or repeat the series' own.
        let bad_ue = c.update_every.as_ref().and_then(|a| {
            let until = bad_point.unwrap_or(run.end);
            a.first_refused(run.start..until, |ue| ue.is_none() || ue == s.update_every)
        });
        let bad = bad_ue.or(bad_point);
        let anomalous = c.anomalous.map(|a| (a.values(), a.nulls()));
        let point = |i: usize| Point {
            t: ts[i],
            value: value_nulls.is_none_or(|b| b.is_valid(i)).then(|| values[i]),
            anomalous: anomalous.is_some_and(|(bits, nulls)| nulls.is_none_or(|n| n.is_valid(i)) && bits.value(i)),
        };
        s.points.extend((run.start..bad.unwrap_or(run.end)).map(point));
        let Some(i) = bad else { return Ok(()) };
        let at = |col: &str| format!("rows[{}].{col}", self.rows + i as u64);
        if ts_nulls.is_some_and(|b| b.is_null(i)) {
            return Err(EngineError::batch(at("ts"), "'ts' must not be null"));
        }
        check_point(|| at("ts"), || at("value"), &point(i))?;
        Err(disagrees(at("update_every"), s.update_every))
    }

    fn point(&self, c: &Columns, i: usize, t: i64) -> Point {
        let value = (!c.value.is_null(i)).then(|| c.value.value(i));
        let anomalous = c.anomalous.is_some_and(|a| !a.is_null(i) && a.value(i));
        Point { t, value, anomalous }
    }

    /// Appends a point to series `k`; a row may not change its update_every.
    fn push(&mut self, k: usize, point: Point, ue: Option<i64>, path: impl Fn() -> String) -> Result<()> {
        let s = &mut self.batch.series[k];
        if ue.is_some_and(|ue| Some(ue) != s.update_every) {
            return Err(disagrees(path(), s.update_every));
        }
        s.points.push(point);
        Ok(())
    }

    /// The series for a metric, created (and its names checked) on first sight.
    #[allow(clippy::too_many_arguments)]
    fn series_for(
        &mut self,
        c: &Columns,
        i: usize,
        row: u64,
        node: Option<&str>,
        context: &str,
        instance: &str,
        dimension: &str,
        ue: Option<i64>,
    ) -> Result<usize> {
        let hash = self.index.hash(node, instance, dimension);
        let series = &self.batch.series;
        let same = |k: usize| {
            let s = &series[k];
            s.node.as_deref() == node && s.instance.as_deref() == Some(instance) && s.dimension == dimension
        };
        if let Some(k) = self.index.find(hash, same) {
            if self.batch.series[k].context != context {
                return Err(EngineError::batch(
                    format!("rows[{row}].context"),
                    format!("metric {instance}/{dimension} already has context '{}'", self.batch.series[k].context),
                ));
            }
            return Ok(k);
        }
        let at = |col: &str| format!("rows[{row}].{col}");
        let meta = |col: &Option<super::columns::StrCol>| col.as_ref().and_then(|a| a.get(i)).map(str::to_string);
        for (col, v, required) in [
            ("node", node, true),
            ("context", Some(context), true),
            ("instance", Some(instance), true),
            ("dimension", Some(dimension), true),
        ] {
            if let Some(v) = v {
                check_name(|| at(col), col, v, required)?;
            }
        }
        let (units, title, chart_type) = (meta(&c.units), meta(&c.title), meta(&c.chart_type));
        for (col, v) in [("units", &units), ("title", &title), ("chart_type", &chart_type)] {
            if let Some(v) = v {
                check_name(|| at(col), col, v, false)?;
            }
        }
        if let Some(ue) = ue {
            if !(1..=MAX_UPDATE_EVERY).contains(&ue) {
                return Err(EngineError::batch(
                    at("update_every"),
                    format!("update_every must be 1..={MAX_UPDATE_EVERY} seconds, got {ue}"),
                ));
            }
        }
        self.batch.series.push(SeriesSpec {
            node: node.map(str::to_string),
            context: context.to_string(),
            instance: Some(instance.to_string()),
            dimension: dimension.to_string(),
            units,
            title,
            chart_type,
            update_every: ue,
            labels: Default::default(),
            points: Vec::new(),
        });
        self.runs.push(Vec::new());
        let k = self.batch.series.len() - 1;
        self.index.insert(hash, k);
        Ok(k)
    }
}

/// A decoded batch's series by their names (node, instance, dimension; no
/// node: the default one), found without building key strings: a metric's
/// first row in each record batch looks its series up, and the key strings
/// were three allocations a series (a batch of a minute of 1,000 series
/// is 1,000 first rows). Names are hashed with a random key of its own (std's
/// `RandomState`, as a `HashMap` of the strings would), so a client cannot
/// pick names that collide; equal hashes are told apart by the names.
#[derive(Default)]
struct SeriesIndex {
    keyed: std::collections::hash_map::RandomState,
    /// The newest series with a hash.
    head: IdMap64<usize>,
    /// Per series, the one before it with the same hash.
    older: Vec<Option<usize>>,
}

/// A map from a keyed hash: its bits are already spread, so the table
/// uses them as they are ([`crate::id_map::IdHasher`]).
type IdMap64<V> = HashMap<u64, V, std::hash::BuildHasherDefault<crate::id_map::IdHasher>>;

impl SeriesIndex {
    fn hash(&self, node: Option<&str>, instance: &str, dimension: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.keyed, (node, instance, dimension))
    }

    /// The series with names of `hash` that `same` accepts.
    fn find(&self, hash: u64, same: impl Fn(usize) -> bool) -> Option<usize> {
        let mut at = self.head.get(&hash).copied();
        while let Some(k) = at {
            if same(k) {
                return Some(k);
            }
            at = self.older.get(k).copied().flatten();
        }
        None
    }

    /// Records series `k` (the newest: `k` is the series count less one).
    fn insert(&mut self, hash: u64, k: usize) {
        let older = self.head.insert(hash, k);
        self.older.resize(k + 1, None);
        self.older[k] = older;
    }
}

#[cfg(test)]
mod series_index_tests {
    use super::SeriesIndex;

    #[test]
    fn equal_hashes_are_told_apart_by_the_names() {
        let mut ix = SeriesIndex::default();
        // Series 0 and 1 share a hash (as colliding names would); 2 has its own.
        ix.insert(7, 0);
        ix.insert(7, 1);
        ix.insert(9, 2);
        assert_eq!(ix.find(7, |k| k == 0), Some(0));
        assert_eq!(ix.find(7, |k| k == 1), Some(1));
        assert_eq!(ix.find(7, |k| k == 2), None, "another hash's series is never offered");
        assert_eq!(ix.find(9, |k| k == 2), Some(2));
        assert_eq!(ix.find(8, |_| true), None);
    }

    #[test]
    fn the_hash_tells_a_missing_node_from_an_empty_one() {
        let ix = SeriesIndex::default();
        assert_eq!(ix.hash(Some("n"), "i", "d"), ix.hash(Some("n"), "i", "d"));
        assert_ne!(ix.hash(None, "i", "d"), ix.hash(Some(""), "i", "d"));
        assert_ne!(ix.hash(None, "ab", "c"), ix.hash(None, "a", "bc"));
    }
}
