//! The catalog: the metadata registry plus its bitmap postings, kept
//! consistent with each other. Every metadata change goes through here.

use crate::index::Postings;
use crate::model::MetricId;
use crate::model::{Registry, SeriesMeta};

#[derive(Debug, Default)]
pub struct Catalog {
    pub registry: Registry,
    pub postings: Postings,
}

impl Catalog {
    /// Registers a series (creating node, context, instance as needed).
    pub fn register(&mut self, meta: &SeriesMeta<'_>) -> MetricId {
        let inst_before = self.registry.instance_idx(meta.node, meta.instance).map(|i| {
            (self.registry.instances[i as usize].labels.clone(), self.registry.instances[i as usize].metrics.len())
        });
        let r = self.registry.register(meta);
        let m = r.metric;
        let inst_idx = self.registry.metric(m).instance;
        let inst = &self.registry.instances[inst_idx as usize];
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
