//! Option `details`: the `detailed` tree of API spec 4.6, node → context →
//! instance → dimension, for every selected metric, with whether it was
//! queried, its retention and the output series it was grouped into.

use std::collections::BTreeMap;

use crate::catalog::Catalog;
use crate::model::MetricId;
use crate::query::result::Summary;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Detailed {
    pub nodes: Vec<DetailedNode>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DetailedNode {
    pub machine_guid: String,
    pub node_id: String,
    pub hostname: String,
    /// Index into `summary.nodes`.
    pub node_index: usize,
    pub contexts: Vec<DetailedContext>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DetailedContext {
    pub id: String,
    pub instances: Vec<DetailedInstance>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DetailedInstance {
    pub id: String,
    pub name: String,
    pub update_every: i64,
    pub labels: Vec<(String, String)>,
    pub dimensions: Vec<DetailedDimension>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DetailedDimension {
    pub id: String,
    pub name: String,
    pub queried: bool,
    pub first_entry: Option<i64>,
    pub last_entry: Option<i64>,
    /// The output series id it was grouped into; `None` when not queried.
    pub grouped_as: Option<String>,
}

/// One selected metric: retention, and the series it went into if queried.
pub struct MetricDetail {
    pub metric: MetricId,
    pub retention: Option<(i64, i64)>,
    pub grouped_as: Option<String>,
}

/// Builds the tree in summary order (nodes by `summary.nodes`, the rest by
/// id), so it reads alongside the summary.
pub fn build(cat: &Catalog, summary: &Summary, metrics: impl IntoIterator<Item = MetricDetail>) -> Detailed {
    let reg = cat.registry();
    // node index -> context -> instance index -> dimensions
    type Tree = BTreeMap<usize, BTreeMap<String, BTreeMap<u32, Vec<DetailedDimension>>>>;
    let mut tree: Tree = BTreeMap::new();
    let mut node_of: BTreeMap<usize, u32> = BTreeMap::new();
    for d in metrics {
        let metric = reg.metric(d.metric);
        let inst = &reg.instances()[metric.instance as usize];
        let node = &reg.nodes()[inst.node as usize];
        let ctx = &reg.contexts()[inst.context as usize];
        let Some(ni) = summary.nodes.iter().position(|n| n.id == node.machine_guid) else { continue };
        node_of.insert(ni, inst.node);
        let dims = tree.entry(ni).or_default().entry(ctx.id.clone()).or_default().entry(metric.instance).or_default();
        dims.push(DetailedDimension {
            id: metric.dimension.clone(),
            name: metric.dimension.clone(),
            queried: d.grouped_as.is_some(),
            first_entry: d.retention.map(|r| r.0),
            last_entry: d.retention.map(|r| r.1),
            grouped_as: d.grouped_as,
        });
    }
    let nodes = tree
        .into_iter()
        .map(|(ni, contexts)| {
            let node = &reg.nodes()[node_of[&ni] as usize];
            DetailedNode {
                machine_guid: node.machine_guid.clone(),
                node_id: node.id.clone(),
                hostname: node.hostname.clone(),
                node_index: ni,
                contexts: contexts
                    .into_iter()
                    .map(|(id, instances)| DetailedContext {
                        id,
                        instances: instances
                            .into_iter()
                            .map(|(ii, mut dimensions)| {
                                let inst = &reg.instances()[ii as usize];
                                dimensions.sort_by(|a, b| a.id.cmp(&b.id));
                                DetailedInstance {
                                    id: inst.id.clone(),
                                    name: inst.name.clone(),
                                    update_every: inst.metrics.first().map_or(1, |&m| reg.metric(m).update_every),
                                    labels: inst.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                                    dimensions,
                                }
                            })
                            .collect(),
                    })
                    .collect(),
            }
        })
        .collect();
    Detailed { nodes }
}
