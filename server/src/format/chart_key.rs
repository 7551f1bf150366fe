//! The key of a chart in answers that list several nodes' charts in one
//! object (`/api/v1/allmetrics`, `/api/v1/weights`): Netdata's
//! `chart@hostname`, and the node id in place of the hostname where that
//! hostname would name two listed nodes: several share it, or it is
//! another listed node's id put in place of its hostname (hostnames are
//! whatever the ingesting side calls itself; ids are unique), so no two
//! nodes' charts merge under one key.

use std::collections::{BTreeSet, HashMap};

use strata_engine::model::{Instance, NodeIdx, Registry};

/// Chart keys for the charts of `nodes`.
pub struct ChartKeys<'a> {
    reg: &'a Registry,
    /// Only one node listed: plain chart ids, as Netdata's own answers.
    single: bool,
    /// Listed nodes named by their id, not their hostname.
    by_id: BTreeSet<NodeIdx>,
}

impl<'a> ChartKeys<'a> {
    pub fn new(reg: &'a Registry, nodes: impl IntoIterator<Item = NodeIdx>) -> Self {
        let nodes: BTreeSet<NodeIdx> = nodes.into_iter().filter(|&n| reg.nodes().get(n as usize).is_some()).collect();
        let mut by_id = BTreeSet::new();
        // A node whose name another listed node also goes by takes its id;
        // that id may be a third node's hostname, so until none collide.
        // Ids never collide with each other: each round moves a node to
        // its id for good, so this ends within one round per node.
        loop {
            let mut named: HashMap<&str, Vec<NodeIdx>> = HashMap::new();
            for &n in &nodes {
                let node = &reg.nodes()[n as usize];
                let name = if by_id.contains(&n) { node.id.as_str() } else { node.hostname.as_str() };
                named.entry(name).or_default().push(n);
            }
            let before = by_id.len();
            by_id.extend(named.into_values().filter(|ns| ns.len() > 1).flatten());
            if by_id.len() == before {
                break;
            }
        }
        ChartKeys { reg, single: nodes.len() <= 1, by_id }
    }

    /// What tells `inst`'s node apart: `None` with one node listed, else
    /// its hostname, or its id where that hostname would name two nodes.
    pub fn node_part(&self, inst: &Instance) -> Option<&'a str> {
        let node = self.reg.nodes().get(inst.node as usize).filter(|_| !self.single)?;
        Some(match self.by_id.contains(&inst.node) {
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

#[cfg(test)]
mod tests {
    use strata_engine::catalog::Catalog;
    use strata_engine::model::SeriesMeta;

    use super::*;

    /// `(node id, hostname)` pairs: every listed node's part differs, and a
    /// node keeps its hostname unless that names another node too.
    fn parts(nodes: &[(&str, &str)]) -> Vec<String> {
        let mut cat = Catalog::default();
        let mut insts = Vec::new();
        for &(id, host) in nodes {
            cat.upsert_node(id, Some(host), None, None);
            let m = cat.register(&SeriesMeta {
                node: id,
                context: "c",
                instance: "c.x",
                dimension: "d",
                update_every: 1,
                ..Default::default()
            });
            insts.push(cat.registry().instance_of(m).clone());
        }
        let reg = cat.registry();
        let keys = ChartKeys::new(reg, insts.iter().map(|i| i.node));
        insts.iter().map(|i| keys.node_part(i).expect("several nodes").to_string()).collect()
    }

    #[test]
    fn no_two_nodes_share_a_part() {
        assert_eq!(parts(&[("n1", "web"), ("n2", "db")]), ["web", "db"]);
        assert_eq!(parts(&[("n1", "web"), ("n2", "web"), ("n3", "db")]), ["n1", "n2", "db"]);
        // n1 goes by its id, which is n3's hostname: n3 goes by its id too,
        // which is n4's hostname, and so on.
        assert_eq!(
            parts(&[("n1", "web"), ("n2", "web"), ("n3", "n1"), ("n4", "n3"), ("n5", "db")]),
            ["n1", "n2", "n3", "n4", "db"]
        );
        // A hostname that is another node's id, that node keeping its hostname.
        assert_eq!(parts(&[("n1", "web"), ("n2", "n1")]), ["web", "n1"]);
        let one = parts(&[("n1", "a"), ("n2", "a"), ("n3", "n2"), ("n4", "n1"), ("n5", "n4")]);
        let distinct: BTreeSet<&String> = one.iter().collect();
        assert_eq!(distinct.len(), one.len(), "{one:?}");
    }
}
