//! Group identity: which output series a metric goes to in a group-by
//! pass (Netdata's fixed component order), and group indexes in order of
//! first appearance.

use std::collections::HashMap;

use crate::catalog::Catalog;
use crate::model::MetricId;
use crate::query::request::{GroupByKey, GroupByPass};

/// Identity of one output series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesKey {
    pub id: String,
    pub name: String,
    pub units: String,
    pub priority: u32,
    /// Label values by key, for `group-by-labels`.
    pub labels: Vec<(String, String)>,
}

/// Builds a metric's group id/name for one pass's keys, in Netdata's fixed
/// component order: dimension, instance, labels, node, context, units.
pub fn series_key(cat: &Catalog, m: MetricId, pass: &GroupByPass, percentage_units: bool) -> SeriesKey {
    let reg = cat.registry();
    let metric = reg.metric(m);
    let inst = reg.instance_of(m);
    let node = reg.node_of(m);
    let ctx = reg.context_of(m);
    let units = if percentage_units { "%".to_string() } else { ctx.units.clone() };
    let has = |k| pass.keys.contains(&k);
    if has(GroupByKey::Selected) {
        return SeriesKey {
            id: "selected".into(),
            name: "selected".into(),
            units,
            priority: metric.priority,
            labels: vec![],
        };
    }
    let (mut ids, mut names): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    if has(GroupByKey::Dimension) {
        ids.push(metric.dimension.clone());
        names.push(metric.dimension.clone());
    }
    if has(GroupByKey::Instance) || has(GroupByKey::PercentageOfInstance) {
        if has(GroupByKey::Node) {
            ids.push(inst.id.clone());
            names.push(inst.name.clone());
        } else {
            ids.push(format!("{}@{}", inst.id, node.machine_guid));
            names.push(format!("{}@{}", inst.name, node.hostname));
        }
    }
    let mut labels = Vec::new();
    if has(GroupByKey::Label) {
        for k in &pass.labels {
            let v = inst.labels.get(k).cloned().unwrap_or_else(|| "[unset]".to_string());
            ids.push(v.clone());
            names.push(v.clone());
            labels.push((k.clone(), v));
        }
    }
    if has(GroupByKey::Node) {
        ids.push(node.machine_guid.clone());
        names.push(node.hostname.clone());
    }
    if has(GroupByKey::Context) {
        ids.push(ctx.id.clone());
        names.push(ctx.id.clone());
    }
    if has(GroupByKey::Units) {
        ids.push(units.clone());
        names.push(units.clone());
    }
    SeriesKey { id: ids.join(","), name: names.join(","), units, priority: metric.priority, labels }
}

/// Assigns group indexes in order of first appearance.
#[derive(Debug, Default)]
pub struct GroupIndex {
    pub keys: Vec<SeriesKey>,
    /// Number of contributors mapped into each group.
    pub members: Vec<u32>,
    by_id: HashMap<String, usize>,
}

impl GroupIndex {
    pub fn assign(&mut self, key: SeriesKey) -> usize {
        if let Some(&g) = self.by_id.get(&key.id) {
            self.members[g] += 1;
            if key.priority < self.keys[g].priority {
                self.keys[g].priority = key.priority;
            }
            return g;
        }
        let g = self.keys.len();
        self.by_id.insert(key.id.clone(), g);
        self.keys.push(key);
        self.members.push(1);
        g
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The group with this id, without creating it.
    pub fn find(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
