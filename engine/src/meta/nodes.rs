//! The node listing: every node with at least one visible metric, in
//! registration order (that order is the `ni` index clients see).

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::Catalog;
use crate::meta::{Span, Visible};
use crate::model::NodeIdx;
use crate::storage::Store;

/// One node and what it holds within the visible set.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    pub index: NodeIdx,
    /// Node id (`nd`): what ingest calls the node.
    pub id: String,
    /// Hostname (`nm`).
    pub hostname: String,
    /// Machine GUID (`mg`).
    pub machine_guid: String,
    pub labels: BTreeMap<String, String>,
    pub span: Span,
    pub contexts: usize,
    pub instances: usize,
    pub metrics: u64,
}

/// Nodes with visible metrics.
pub fn list(cat: &Catalog, store: &Store, visible: &Visible, tiers: usize) -> Vec<NodeInfo> {
    let reg = cat.registry();
    let mut out = Vec::new();
    for (i, n) in reg.nodes().iter().enumerate() {
        let Some(b) = cat.postings().node(i as u32) else { continue };
        let mine = b & visible;
        if mine.is_empty() {
            continue;
        }
        let mut contexts = BTreeSet::new();
        let mut instances = BTreeSet::new();
        for m in &mine {
            let inst = reg.metric(m).instance;
            instances.insert(inst);
            contexts.insert(reg.instances()[inst as usize].context);
        }
        out.push(NodeInfo {
            index: i as NodeIdx,
            id: n.id.clone(),
            hostname: n.hostname.clone(),
            machine_guid: n.machine_guid.clone(),
            labels: n.labels.clone(),
            span: Span::of(store, mine.iter(), tiers),
            contexts: contexts.len(),
            instances: instances.len(),
            metrics: mine.len(),
        });
    }
    out
}
