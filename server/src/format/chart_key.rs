//! The key of a chart in answers that list several nodes' charts in one
//! object (`/api/v1/allmetrics`, `/api/v1/weights`): Netdata's
//! `chart@hostname`, and the node id in place of the hostname where
//! several of the listed nodes share one (hostnames are whatever the
//! ingesting side calls itself; ids are unique), so no two nodes' charts
//! merge under one key.

use std::collections::{BTreeSet, HashMap};

use strata_engine::model::{Instance, NodeIdx, Registry};

/// Chart keys for the charts of `nodes`.
pub struct ChartKeys<'a> {
    reg: &'a Registry,
    /// Only one node listed: plain chart ids, as Netdata's own answers.
    single: bool,
    /// Hostnames that more than one listed node carries.
    shared: BTreeSet<&'a str>,
}

impl<'a> ChartKeys<'a> {
    pub fn new(reg: &'a Registry, nodes: impl IntoIterator<Item = NodeIdx>) -> Self {
        let nodes: BTreeSet<NodeIdx> = nodes.into_iter().collect();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for &n in &nodes {
            if let Some(node) = reg.nodes().get(n as usize) {
                *seen.entry(node.hostname.as_str()).or_default() += 1;
            }
        }
        let shared = seen.into_iter().filter(|&(_, k)| k > 1).map(|(h, _)| h).collect();
        ChartKeys { reg, single: nodes.len() <= 1, shared }
    }

    /// What tells `inst`'s node apart: `None` with one node listed, else
    /// its hostname, or its id where listed nodes share that hostname.
    pub fn node_part(&self, inst: &Instance) -> Option<&'a str> {
        let node = self.reg.nodes().get(inst.node as usize).filter(|_| !self.single)?;
        Some(match self.shared.contains(node.hostname.as_str()) {
            true => node.id.as_str(),
            false => node.hostname.as_str(),
        })
    }

    /// The key of `inst`'s chart: its id, `@` and [`ChartKeys::node_part`].
    pub fn key(&self, inst: &Instance) -> String {
        match self.node_part(inst) {
            Some(part) => format!("{}@{part}", inst.id),
            None => inst.id.clone(),
        }
    }
}
