//! The context listing: every context with at least one visible metric,
//! with its presentation facts, retention, and (for clients that ask) its
//! dimensions, instances and instance labels across the visible nodes.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::Catalog;
use crate::meta::{Span, Visible};
use crate::model::NodeIdx;
use crate::storage::Store;

/// One context as seen through the visible set.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextInfo {
    pub id: String,
    pub title: String,
    pub units: String,
    pub family: String,
    pub chart_type: String,
    pub priority: u32,
    pub span: Span,
    /// Dimension names, in first-registration order.
    pub dimensions: Vec<String>,
    /// Instance ids (distinct; the same id on two nodes counts once).
    pub instances: Vec<String>,
    /// Instances counted per node (the same id on two nodes counts twice),
    /// as a listing of instances with their nodes has them.
    pub node_instances: usize,
    /// Instance labels: key -> values.
    pub labels: BTreeMap<String, BTreeSet<String>>,
    /// Nodes that have it.
    pub nodes: BTreeSet<NodeIdx>,
    pub metrics: u64,
}

/// Contexts with visible metrics, in context registration order.
pub fn list(cat: &Catalog, store: &Store, visible: &Visible, tiers: usize) -> Vec<ContextInfo> {
    let reg = cat.registry();
    let mut out = Vec::new();
    for (i, c) in reg.contexts().iter().enumerate() {
        let Some(b) = cat.postings().context(i as u32) else { continue };
        let mine = b & visible;
        if mine.is_empty() {
            continue;
        }
        let mut info = ContextInfo {
            id: c.id.clone(),
            title: c.title.clone(),
            units: c.units.clone(),
            family: c.family.clone(),
            chart_type: c.chart_type.clone(),
            priority: c.priority,
            span: Span::of(store, mine.iter(), tiers),
            dimensions: Vec::new(),
            instances: Vec::new(),
            node_instances: 0,
            labels: BTreeMap::new(),
            nodes: BTreeSet::new(),
            metrics: mine.len(),
        };
        let mut seen_inst = BTreeSet::new();
        for m in &mine {
            let metric = reg.metric(m);
            if !info.dimensions.contains(&metric.dimension) {
                info.dimensions.push(metric.dimension.clone());
            }
            if seen_inst.insert(metric.instance) {
                let inst = &reg.instances()[metric.instance as usize];
                info.nodes.insert(inst.node);
                if !info.instances.contains(&inst.id) {
                    info.instances.push(inst.id.clone());
                }
                for (k, v) in &inst.labels {
                    info.labels.entry(k.clone()).or_default().insert(v.clone());
                }
            }
        }
        info.node_instances = seen_inst.len();
        out.push(info);
    }
    out
}
