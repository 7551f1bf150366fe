//! Whole-batch validation: every problem is reported with the JSON path of
//! the element at fault, before anything is applied.

use super::{IngestBatch, Point, SeriesSpec};
use crate::catalog::Catalog;
use crate::error::{EngineError, Result};
use crate::model::MetricId;

const MAX_NAME: usize = 256;
/// Timestamps outside [1970, 2200) are refused: they are typos, not data.
pub(crate) const MAX_T: i64 = 7_258_118_400;
pub const MAX_UPDATE_EVERY: i64 = 86_400;

/// A name's checks; `path()` (built only on error, as this runs for every
/// name of every series of every batch) names it in the error.
pub(crate) fn check_name(path: impl FnOnce() -> String, field: &str, v: &str, required: bool) -> Result<()> {
    if required && v.trim().is_empty() {
        return Err(EngineError::batch(path(), format!("'{field}' must not be empty")));
    }
    if v.len() > MAX_NAME {
        return Err(EngineError::batch(path(), format!("'{field}' is longer than {MAX_NAME} bytes")));
    }
    if v.chars().any(char::is_control) {
        return Err(EngineError::batch(path(), format!("'{field}' contains control characters")));
    }
    Ok(())
}

/// A point's own checks: a plausible time and a finite value (or a gap).
/// Errors name `time_path()` or `value_path()` (the same element in JSON);
/// paths are built only on error, since this runs once per sample.
#[inline]
pub(crate) fn check_point(time_path: impl Fn() -> String, value_path: impl Fn() -> String, pt: &Point) -> Result<()> {
    if !(0..MAX_T).contains(&pt.t) {
        return Err(EngineError::batch(time_path(), format!("timestamp {} is outside 1970..2200", pt.t)));
    }
    if pt.value.is_some_and(|v| !v.is_finite()) {
        return Err(EngineError::batch(value_path(), "value must be a finite number or null"));
    }
    Ok(())
}

/// How many distinct series of `batch` the catalog does not know yet.
pub fn new_series(batch: &IngestBatch, cat: &Catalog, default_node: &str) -> u64 {
    let mut seen = std::collections::HashSet::new();
    batch
        .series
        .iter()
        .filter(|s| {
            let node = s.node.as_deref().unwrap_or(default_node);
            let inst = s.instance.as_deref().unwrap_or(&s.context);
            cat.registry().metric_id(node, inst, &s.dimension).is_none() && seen.insert((node, inst, &s.dimension))
        })
        .count() as u64
}

/// Checks a batch against itself and the catalog: [`validate_shape`],
/// then [`validate_against`].
pub fn validate(batch: &IngestBatch, cat: &Catalog, default_node: &str) -> Result<()> {
    validate_shape(batch, default_node)?;
    validate_against(batch, cat, default_node)
}

/// The checks that need no catalog: names, labels, chart types, the
/// update_every range, every point, machine_guid shapes, and the batch
/// agreeing with itself (a new metric's update_every, a machine_guid held
/// by one node). Ingest runs them before it takes its order lock, so
/// concurrent batches are checked in parallel.
pub fn validate_shape(batch: &IngestBatch, default_node: &str) -> Result<()> {
    for (i, n) in batch.nodes.iter().enumerate() {
        check_name(|| format!("nodes[{i}].id"), "id", &n.id, true)?;
        if let Some(h) = &n.hostname {
            check_name(|| format!("nodes[{i}].hostname"), "hostname", h, true)?;
        }
        if let Some(g) = &n.machine_guid {
            check_machine_guid_shape(batch, i, g)?;
        }
        for (k, v) in &n.labels {
            check_name(|| format!("nodes[{i}].labels.{k}"), "label key", k, true)?;
            check_name(|| format!("nodes[{i}].labels.{k}"), "label value", v, false)?;
        }
    }
    for (i, s) in batch.series.iter().enumerate() {
        let p = |f: &'static str| move || format!("series[{i}].{f}");
        let node = s.node.as_deref().unwrap_or(default_node);
        check_name(p("node"), "node", node, true)?;
        check_name(p("context"), "context", &s.context, true)?;
        check_name(p("dimension"), "dimension", &s.dimension, true)?;
        if let Some(inst) = &s.instance {
            check_name(p("instance"), "instance", inst, true)?;
        }
        for (f, v) in [("units", &s.units), ("title", &s.title)] {
            if let Some(v) = v {
                check_name(p(f), f, v, false)?;
            }
        }
        if let Some(ct) = &s.chart_type {
            if !matches!(ct.as_str(), "line" | "area" | "stacked" | "heatmap") {
                return Err(EngineError::batch(
                    p("chart_type")(),
                    format!("chart_type '{ct}' must be line, area, stacked or heatmap"),
                ));
            }
        }
        for (k, v) in &s.labels {
            check_name(|| format!("series[{i}].labels.{k}"), "label key", k, true)?;
            check_name(|| format!("series[{i}].labels.{k}"), "label value", v, false)?;
        }
        let ue = s.update_every.unwrap_or(1);
        if !(1..=MAX_UPDATE_EVERY).contains(&ue) {
            return Err(EngineError::batch(
                p("update_every")(),
                format!("update_every must be 1..={MAX_UPDATE_EVERY} seconds, got {ue}"),
            ));
        }
        for (j, pt) in s.points.iter().enumerate() {
            let path = || format!("series[{i}].points[{j}]");
            check_point(path, path, pt)?;
        }
    }
    // Two series of one batch may not disagree on a new metric's update_every.
    // Sized once: regrowing it rehashed every key (1.5 % of a bulk load's
    // CPU). Hashed once a series, with foldhash (randomly seeded per map,
    // as the catalog's name maps): SipHash here was 2 % of an Arrow load's
    // CPU. foldhash does not claim to resist chosen collisions; this map
    // lives for one batch, which only an ingest token can send and the
    // body cap (64 MiB) bounds.
    let mut seen =
        std::collections::HashMap::with_capacity_and_hasher(batch.series.len(), foldhash::fast::RandomState::default());
    for (i, s) in batch.series.iter().enumerate() {
        let node = s.node.as_deref().unwrap_or(default_node);
        let instance = s.instance.as_deref().unwrap_or(&s.context);
        let ue = s.update_every.unwrap_or(1);
        match seen.entry((node, instance, s.dimension.as_str())) {
            std::collections::hash_map::Entry::Occupied(o) => {
                let &(prev, j) = o.get();
                if prev != ue {
                    return Err(EngineError::batch(
                        format!("series[{i}].update_every"),
                        format!("conflicts with series[{j}] ({prev}s vs {ue}s)"),
                    ));
                }
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert((ue, i));
            }
        }
    }
    Ok(())
}

/// The checks against the catalog: an existing metric keeps its
/// update_every, and no other node already holds a node's machine_guid.
/// Ingest runs them before its order lock, and again under it (where the
/// catalog cannot change before the batch is applied) when the registry's
/// generation moved in between.
pub fn validate_against(batch: &IngestBatch, cat: &Catalog, default_node: &str) -> Result<()> {
    for (i, n) in batch.nodes.iter().enumerate() {
        let Some(g) = &n.machine_guid else { continue };
        let holder = cat.registry().nodes().iter().find(|c| c.machine_guid == *g && c.id != n.id);
        if let Some(other) = holder {
            return Err(EngineError::batch(
                format!("nodes[{i}].machine_guid"),
                format!("machine_guid {g} already belongs to node '{}'", other.id),
            ));
        }
    }
    for (i, s) in batch.series.iter().enumerate() {
        let node = s.node.as_deref().unwrap_or(default_node);
        let instance = s.instance.as_deref().unwrap_or(&s.context);
        if let Some(m) = cat.registry().metric_id(node, instance, &s.dimension) {
            same_update_every(i, s, cat.registry().metric(m).update_every, default_node)?;
        }
    }
    Ok(())
}

/// An instance (a Netdata chart) belongs to one context: no two series of
/// `batch` put one in two contexts, nor one the catalog holds in another.
/// New batches only: WAL replay does not run it, so records acknowledged
/// before this rule existed replay as they were applied (their series
/// joined the instance's first context). Ingest runs it where it runs
/// [`validate_against`]: a batch of known series needs neither, as the
/// lookup that found them ([`crate::model::Registry::find_unchanged`])
/// matched each one's instance to its own context.
pub fn validate_contexts(batch: &IngestBatch, cat: &Catalog, default_node: &str) -> Result<()> {
    let reg = cat.registry();
    let mut first: std::collections::HashMap<(&str, &str), (&str, usize), _> =
        std::collections::HashMap::with_capacity_and_hasher(batch.series.len(), foldhash::fast::RandomState::default());
    for (i, s) in batch.series.iter().enumerate() {
        let node = s.node.as_deref().unwrap_or(default_node);
        let instance = s.instance.as_deref().unwrap_or(&s.context);
        match first.entry((node, instance)) {
            std::collections::hash_map::Entry::Occupied(o) => {
                let &(ctx, j) = o.get();
                if ctx != s.context {
                    return Err(instance_in_two_contexts(i, node, instance, ctx, &format!("series[{j}]")));
                }
                continue;
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert((s.context.as_str(), i));
            }
        }
        if let Some(idx) = reg.instance_idx(node, instance) {
            let held = &reg.contexts()[reg.instances()[idx as usize].context as usize].id;
            if *held != s.context {
                return Err(instance_in_two_contexts(i, node, instance, held, "the server"));
            }
        }
    }
    Ok(())
}

/// Series `i` puts `instance` of `node` in another context than `held`
/// (where `holder` has it): an instance (a Netdata chart) belongs to one
/// context, and its metrics would otherwise land in `held`'s silently.
fn instance_in_two_contexts(i: usize, node: &str, instance: &str, held: &str, holder: &str) -> EngineError {
    EngineError::batch(
        format!("series[{i}].context"),
        format!(
            "instance '{instance}' of node '{node}' is in context '{held}' ({holder}); an instance belongs to one context, so give this series another instance id"
        ),
    )
}

/// [`validate_against`] for a batch whose series are all known, series `i`
/// as metric `metrics[i]`, with nodes that the catalog holds unchanged
/// (so each already holds its machine_guid alone): only each metric's
/// update_every is left to check, by id, without looking its names up
/// again (those lookups were most of the checks' cost in a bulk load).
pub fn validate_known(batch: &IngestBatch, cat: &Catalog, metrics: &[MetricId], default_node: &str) -> Result<()> {
    for (i, (s, &m)) in batch.series.iter().zip(metrics).enumerate() {
        same_update_every(i, s, cat.registry().metric(m).update_every, default_node)?;
    }
    Ok(())
}

/// Series `i` keeps the update_every its metric was created with.
fn same_update_every(i: usize, s: &SeriesSpec, existing: i64, default_node: &str) -> Result<()> {
    let ue = s.update_every.unwrap_or(1);
    if existing == ue {
        return Ok(());
    }
    let node = s.node.as_deref().unwrap_or(default_node);
    let instance = s.instance.as_deref().unwrap_or(&s.context);
    Err(EngineError::batch(
        format!("series[{i}].update_every"),
        format!("metric {node}/{instance}/{} is collected every {existing}s, not {ue}s", s.dimension),
    ))
}

/// A node's `machine_guid` is a lowercase UUID (`8-4-4-4-12` hex digits)
/// that no other node of the batch holds (nor of the catalog:
/// [`validate_against`]): it is the key Netdata clients group nodes by.
fn check_machine_guid_shape(batch: &IngestBatch, i: usize, g: &str) -> Result<()> {
    let path = || format!("nodes[{i}].machine_guid");
    let shaped = g.len() == 36
        && g.bytes().enumerate().all(|(k, b)| {
            if matches!(k, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
            }
        });
    if !shaped {
        return Err(EngineError::batch(
            path(),
            format!("'{g}' is not a lowercase UUID (like 6f1c3c52-7d7e-4b0a-9c41-2f8e5d0a1b23)"),
        ));
    }
    let id = &batch.nodes[i].id;
    let in_batch = batch.nodes[..i].iter().find(|n| n.machine_guid.as_deref() == Some(g) && &n.id != id);
    match in_batch {
        Some(other) => {
            Err(EngineError::batch(path(), format!("machine_guid {g} already belongs to node '{}'", other.id)))
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::NodeSpec;

    fn node(id: &str, g: &str) -> NodeSpec {
        NodeSpec { id: id.into(), machine_guid: Some(g.into()), ..Default::default() }
    }

    const G: &str = "6f1c3c52-7d7e-4b0a-9c41-2f8e5d0a1b23";

    /// A per-second series of node `h` as the registry takes it.
    fn meta<'a>(context: &'a str, instance: &'a str) -> crate::model::SeriesMeta<'a> {
        crate::model::SeriesMeta {
            node: "h",
            context,
            instance,
            dimension: "d",
            units: None,
            title: None,
            chart_type: None,
            update_every: 1,
            labels: None,
        }
    }

    fn series(dimension: &str, ue: i64) -> crate::ingest::SeriesSpec {
        crate::ingest::SeriesSpec {
            context: "c".into(),
            dimension: dimension.into(),
            update_every: Some(ue),
            ..Default::default()
        }
    }

    #[test]
    fn update_every_agrees_within_the_batch_and_with_the_catalog() {
        let mut cat = Catalog::default();
        // Within the batch: checked without the catalog, before the order lock.
        let split = IngestBatch { nodes: vec![], series: vec![series("d", 1), series("d", 2)] };
        match validate_shape(&split, "h") {
            Err(EngineError::InvalidBatch { path, message }) => {
                assert!(path == "series[1].update_every" && message.contains("conflicts with series[0]"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        // Against the catalog: only validate_against sees it.
        cat.register(&meta("c", "c"));
        let other = IngestBatch { nodes: vec![], series: vec![series("d", 5)] };
        assert!(validate_shape(&other, "h").is_ok());
        let e = validate_against(&other, &cat, "h").expect_err("changed").to_string();
        assert!(e.contains("is collected every 1s, not 5s"), "{e}");
        assert!(validate(&other, &cat, "h").is_err(), "validate runs both halves");
        let same = IngestBatch { nodes: vec![], series: vec![series("d", 1), series("e", 5)] };
        assert!(validate(&same, &cat, "h").is_ok());
    }

    #[test]
    fn an_instance_belongs_to_one_context() {
        let in_ctx = |context: &str, dimension: &str| crate::ingest::SeriesSpec {
            context: context.into(),
            instance: Some("shared".into()),
            ..series(dimension, 1)
        };
        // Within the batch.
        let two = IngestBatch { nodes: vec![], series: vec![in_ctx("alpha", "d"), in_ctx("beta", "d")] };
        assert!(validate_shape(&two, "h").is_ok(), "replay runs the shape checks: this rule is not one");
        match validate_contexts(&two, &Catalog::default(), "h") {
            Err(EngineError::InvalidBatch { path, message }) => {
                assert_eq!(path, "series[1].context");
                assert!(message.contains("'shared'") && message.contains("'alpha' (series[0])"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // Against the catalog, for a known dimension and for a new one.
        let mut cat = Catalog::default();
        cat.register(&meta("alpha", "shared"));
        for dim in ["d", "new"] {
            let other = IngestBatch { nodes: vec![], series: vec![in_ctx("alpha", "d"), in_ctx("beta", dim)] };
            let beta = IngestBatch { nodes: vec![], series: vec![in_ctx("beta", dim)] };
            assert!(validate_contexts(&beta, &Catalog::default(), "h").is_ok());
            assert!(validate(&beta, &cat, "h").is_ok(), "replay's checks let an old record through");
            let e = validate_contexts(&beta, &cat, "h");
            assert!(e.expect_err("held by alpha").to_string().contains("in context 'alpha' (the server)"));
            assert!(validate_contexts(&other, &cat, "h").is_err());
            // The fast path for known series must not take it either.
            assert!(cat
                .registry()
                .find_unchanged(&crate::model::SeriesMeta { dimension: dim, ..meta("beta", "shared") })
                .is_none());
        }
        let same = IngestBatch { nodes: vec![], series: vec![in_ctx("alpha", "d"), in_ctx("alpha", "e")] };
        assert!(validate_contexts(&same, &cat, "h").is_ok());
    }

    #[test]
    fn machine_guids_are_lowercase_uuids_held_by_one_node() {
        let mut cat = Catalog::default();
        let ok = IngestBatch { nodes: vec![node("a", G)], series: vec![] };
        assert!(validate(&ok, &cat, "h").is_ok());
        for bad in [
            "",
            "6F1C3C52-7D7E-4B0A-9C41-2F8E5D0A1B23",
            "6f1c3c527d7e4b0a9c412f8e5d0a1b23",
            "6f1c3c52-7d7e-4b0a-9c41-2f8e5d0a1b2g",
        ] {
            let b = IngestBatch { nodes: vec![node("a", bad)], series: vec![] };
            match validate(&b, &cat, "h") {
                Err(EngineError::InvalidBatch { path, message }) => {
                    assert!(path == "nodes[0].machine_guid" && message.contains("UUID"), "{path}: {message}")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        let twice = IngestBatch { nodes: vec![node("a", G), node("b", G)], series: vec![] };
        assert!(validate(&twice, &cat, "h").expect_err("duplicate").to_string().contains("belongs to node 'a'"));
        cat.upsert_node("a", None, Some(G), None);
        assert!(validate(&ok, &cat, "h").is_ok(), "a node may repeat its own guid");
        let taken = IngestBatch { nodes: vec![node("b", G)], series: vec![] };
        assert!(validate(&taken, &cat, "h").expect_err("taken").to_string().contains("belongs to node 'a'"));
    }
}
