//! The instance ("chart") listing behind the v1 `charts` and `chart`
//! endpoints. An instance id may exist on several nodes; v1 data queries
//! by `chart=ID` read all of them, so the listing merges them the same way.

use std::collections::BTreeMap;

use crate::catalog::Catalog;
use crate::meta::{Span, Visible};
use crate::model::{InstanceIdx, NodeIdx};
use crate::storage::Store;

/// One instance id across the visible nodes that have it.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceInfo {
    pub id: String,
    pub name: String,
    pub context: String,
    pub title: String,
    pub units: String,
    pub family: String,
    pub chart_type: String,
    pub priority: u32,
    /// Dimension names, in registration order.
    pub dimensions: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub nodes: Vec<NodeIdx>,
    pub span: Span,
}

/// How many entries [`list`] gives without `only`: the distinct ids of
/// instances with a visible metric, without reading their retention.
pub fn count(cat: &Catalog, visible: &Visible) -> usize {
    let reg = cat.registry();
    let ids: std::collections::HashSet<&str> = reg
        .instances()
        .iter()
        .enumerate()
        .filter(|&(i, _)| cat.postings().instance(i as InstanceIdx).is_some_and(|b| !b.is_disjoint(visible)))
        .map(|(_, inst)| inst.id.as_str())
        .collect();
    ids.len()
}

/// Instances with visible metrics, in first-registration order; `only`
/// keeps just the one with that id (or name).
pub fn list(cat: &Catalog, store: &Store, visible: &Visible, tiers: usize, only: Option<&str>) -> Vec<InstanceInfo> {
    let reg = cat.registry();
    let mut out: Vec<InstanceInfo> = Vec::new();
    let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
    for (i, inst) in reg.instances().iter().enumerate() {
        if only.is_some_and(|o| o != inst.id && o != inst.name) {
            continue;
        }
        let Some(b) = cat.postings().instance(i as InstanceIdx) else { continue };
        let mine = b & visible;
        if mine.is_empty() {
            continue;
        }
        let ctx = &reg.contexts()[inst.context as usize];
        let pos = *by_id.entry(inst.id.clone()).or_insert_with(|| {
            out.push(InstanceInfo {
                id: inst.id.clone(),
                name: inst.name.clone(),
                context: ctx.id.clone(),
                title: ctx.title.clone(),
                units: ctx.units.clone(),
                family: ctx.family.clone(),
                chart_type: ctx.chart_type.clone(),
                priority: ctx.priority,
                dimensions: Vec::new(),
                labels: BTreeMap::new(),
                nodes: Vec::new(),
                span: Span::default(),
            });
            out.len() - 1
        });
        let info = &mut out[pos];
        for m in &mine {
            let d = &reg.metric(m).dimension;
            if !info.dimensions.contains(d) {
                info.dimensions.push(d.clone());
            }
        }
        for (k, v) in &inst.labels {
            info.labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
        if !info.nodes.contains(&inst.node) {
            info.nodes.push(inst.node);
        }
        let s = Span::of(store, mine.iter(), tiers);
        info.span = info.span.merge(s);
    }
    out
}
