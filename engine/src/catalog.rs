//! The catalog: the metadata registry plus its bitmap postings, kept
//! consistent with each other. Every metadata change goes through here.

use crate::index::Postings;
use crate::model::MetricId;
use crate::model::{Registry, SeriesMeta};

#[derive(Debug, Default)]
pub struct Catalog {
    registry: Registry,
    postings: Postings,
}

/// Read access only: the registry and the postings change together, in
/// `Catalog`'s own methods, and every change bumps the registry's
/// generation (see [`Registry`]).
impl Catalog {
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn postings(&self) -> &Postings {
        &self.postings
    }

    /// Creates or updates a node (see [`Registry::upsert_node`]); its
    /// metrics' postings do not depend on its names.
    pub fn upsert_node(
        &mut self,
        id: &str,
        hostname: Option<&str>,
        machine_guid: Option<&str>,
        labels: Option<&std::collections::BTreeMap<String, String>>,
    ) -> crate::model::NodeIdx {
        self.registry.upsert_node(id, hostname, machine_guid, labels)
    }

    /// Registers a series (creating node, context, instance as needed).
    pub fn register(&mut self, meta: &SeriesMeta<'_>) -> MetricId {
        // The old labels are kept (a copy) only when these replace them:
        // most batches name known series with the same labels or none.
        let inst_before = self.registry.instance_idx(meta.node, meta.instance).and_then(|i| {
            let inst = &self.registry.instances()[i as usize];
            let relabels = meta.labels.is_some_and(|l| !l.is_empty() && *l != inst.labels);
            relabels.then(|| (inst.labels.clone(), inst.metrics.len()))
        });
        let r = self.registry.register(meta);
        let m = r.metric;
        let inst_idx = self.registry.metric(m).instance;
        let inst = &self.registry.instances()[inst_idx as usize];
        if r.new_metric {
            self.postings.add_metric(m, inst.node, inst.context, inst_idx, meta.dimension, &inst.labels);
        }
        if let Some((old, existing)) = inst_before {
            if old != inst.labels {
                // Only the metrics that were indexed under the old labels.
                let metrics = inst.metrics[..existing].to_vec();
                let new = inst.labels.clone();
                self.postings.relabel(&metrics, &old, &new);
            }
        }
        m
    }
}

/// The catalog as persisted at checkpoints. Metrics are listed in MetricId
/// order, so registering them in order reproduces every id.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct CatalogSnapshot {
    pub nodes: Vec<NodeSnap>,
    pub metrics: Vec<MetricSnap>,
    pub contexts: Vec<ContextSnap>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NodeSnap {
    pub id: String,
    pub hostname: String,
    /// Absent in snapshots written before ingest could set it (derived then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_guid: Option<String>,
    pub labels: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ContextSnap {
    pub id: String,
    pub title: String,
    pub units: String,
    pub chart_type: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MetricSnap {
    pub node: String,
    pub context: String,
    pub instance: String,
    pub dimension: String,
    pub update_every: i64,
    pub labels: std::collections::BTreeMap<String, String>,
}

impl Catalog {
    pub fn snapshot(&self) -> CatalogSnapshot {
        let r = &self.registry;
        CatalogSnapshot {
            nodes: r
                .nodes()
                .iter()
                .map(|n| NodeSnap {
                    id: n.id.clone(),
                    hostname: n.hostname.clone(),
                    machine_guid: Some(n.machine_guid.clone()),
                    labels: n.labels.clone(),
                })
                .collect(),
            contexts: r
                .contexts()
                .iter()
                .map(|c| ContextSnap {
                    id: c.id.clone(),
                    title: c.title.clone(),
                    units: c.units.clone(),
                    chart_type: c.chart_type.clone(),
                })
                .collect(),
            metrics: (0..r.metrics().len() as MetricId)
                .map(|m| {
                    let inst = r.instance_of(m);
                    MetricSnap {
                        node: r.node_of(m).id.clone(),
                        context: r.context_of(m).id.clone(),
                        instance: inst.id.clone(),
                        dimension: r.metric(m).dimension.clone(),
                        update_every: r.metric(m).update_every,
                        labels: inst.labels.clone(),
                    }
                })
                .collect(),
        }
    }

    /// Rebuilds a catalog with the same MetricIds.
    pub fn restore(snap: &CatalogSnapshot) -> Catalog {
        let mut c = Catalog::default();
        for n in &snap.nodes {
            c.registry.upsert_node(&n.id, Some(&n.hostname), n.machine_guid.as_deref(), Some(&n.labels));
        }
        let ctx: std::collections::HashMap<&str, &ContextSnap> =
            snap.contexts.iter().map(|x| (x.id.as_str(), x)).collect();
        for m in &snap.metrics {
            let cs = ctx.get(m.context.as_str());
            c.register(&SeriesMeta {
                node: &m.node,
                context: &m.context,
                instance: &m.instance,
                dimension: &m.dimension,
                units: cs.map(|x| x.units.as_str()),
                title: cs.map(|x| x.title.as_str()),
                chart_type: cs.map(|x| x.chart_type.as_str()),
                update_every: m.update_every,
                labels: Some(&m.labels),
            });
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_restores_the_same_ids() {
        let mut c = Catalog::default();
        let labels: std::collections::BTreeMap<String, String> = [("device".to_string(), "sda".to_string())].into();
        for (n, i, d) in
            [("a", "disk.sda", "reads"), ("b", "cpu", "user"), ("a", "disk.sda", "writes"), ("a", "cpu", "user")]
        {
            c.register(&SeriesMeta {
                node: n,
                context: "ctx",
                instance: i,
                dimension: d,
                update_every: 1,
                labels: Some(&labels),
                ..Default::default()
            });
        }
        let r = Catalog::restore(&c.snapshot());
        for m in 0..4 {
            assert_eq!(r.registry.node_of(m).id, c.registry.node_of(m).id);
            assert_eq!(r.registry.metric(m).dimension, c.registry.metric(m).dimension);
            assert_eq!(r.registry.instance_of(m).labels, labels);
        }
        assert_eq!(r.postings.all.len(), 4);
    }

    /// An instance's label postings follow its labels: new labels move its
    /// metrics (also those registered before), while the same labels or
    /// none leave them where they are.
    #[test]
    fn label_postings_follow_the_instance_labels() {
        let mut c = Catalog::default();
        let labels = |v: &str| -> std::collections::BTreeMap<String, String> { [("env".into(), v.into())].into() };
        let (prod, dev, none) = (labels("prod"), labels("dev"), std::collections::BTreeMap::new());
        let mut register = |d: &str, l: &std::collections::BTreeMap<String, String>| {
            c.register(&SeriesMeta {
                node: "n",
                context: "ctx",
                instance: "i",
                dimension: d,
                update_every: 1,
                labels: Some(l),
                ..Default::default()
            })
        };
        let a = register("a", &prod);
        register("a", &prod);
        register("a", &none);
        let b = register("b", &dev);
        register("b", &dev);
        register("a", &none);
        let with =
            |c: &Catalog, k: &str| c.postings.by_label.get(k).map(|b| b.iter().collect::<Vec<_>>()).unwrap_or_default();
        assert_eq!(with(&c, "env:dev"), vec![a, b]);
        assert!(with(&c, "env:prod").is_empty());
        assert_eq!(c.registry.instance_of(a).labels, dev);
    }
}
