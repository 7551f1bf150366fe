//! Roaring-bitmap postings from every node, context, instance, dimension
//! name and label `key:value` to the MetricIds carrying it. Selection
//! evaluates patterns once per distinct name and unions bitmaps, so query
//! time never walks metrics to match strings.

use std::collections::{BTreeMap, HashMap};

use roaring::RoaringBitmap;

use crate::model::{ContextIdx, InstanceIdx, MetricId, NodeIdx};

#[derive(Debug, Default, Clone)]
pub struct Postings {
    pub all: RoaringBitmap,
    pub by_node: Vec<RoaringBitmap>,
    pub by_context: Vec<RoaringBitmap>,
    pub by_instance: Vec<RoaringBitmap>,
    pub by_dimension: BTreeMap<String, RoaringBitmap>,
    /// Key `"key:value"`.
    pub by_label: HashMap<String, RoaringBitmap>,
}

fn slot(v: &mut Vec<RoaringBitmap>, i: u32) -> &mut RoaringBitmap {
    let i = i as usize;
    if v.len() <= i {
        v.resize_with(i + 1, RoaringBitmap::new);
    }
    &mut v[i]
}

impl Postings {
    pub fn add_metric(
        &mut self,
        m: MetricId,
        node: NodeIdx,
        context: ContextIdx,
        instance: InstanceIdx,
        dimension: &str,
        labels: &BTreeMap<String, String>,
    ) {
        self.all.insert(m);
        slot(&mut self.by_node, node).insert(m);
        slot(&mut self.by_context, context).insert(m);
        slot(&mut self.by_instance, instance).insert(m);
        self.by_dimension.entry(dimension.to_string()).or_default().insert(m);
        for (k, v) in labels {
            self.by_label.entry(format!("{k}:{v}")).or_default().insert(m);
        }
    }

    /// Re-points label postings of an instance's metrics after its labels changed.
    pub fn relabel(&mut self, metrics: &[MetricId], old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) {
        for (k, v) in old {
            if let Some(b) = self.by_label.get_mut(&format!("{k}:{v}")) {
                for &m in metrics {
                    b.remove(m);
                }
            }
        }
        for (k, v) in new {
            let b = self.by_label.entry(format!("{k}:{v}")).or_default();
            for &m in metrics {
                b.insert(m);
            }
        }
        self.by_label.retain(|_, b| !b.is_empty());
    }

    pub fn node(&self, n: NodeIdx) -> Option<&RoaringBitmap> {
        self.by_node.get(n as usize)
    }

    pub fn context(&self, c: ContextIdx) -> Option<&RoaringBitmap> {
        self.by_context.get(c as usize)
    }

    pub fn instance(&self, i: InstanceIdx) -> Option<&RoaringBitmap> {
        self.by_instance.get(i as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_and_relabel() {
        let mut p = Postings::default();
        let l1: BTreeMap<String, String> = [("env".to_string(), "prod".to_string())].into();
        let l2: BTreeMap<String, String> = [("env".to_string(), "dev".to_string())].into();
        p.add_metric(0, 0, 0, 0, "user", &l1);
        p.add_metric(1, 0, 0, 0, "system", &l1);
        p.add_metric(2, 1, 0, 1, "user", &BTreeMap::new());
        assert_eq!(p.by_dimension["user"].len(), 2);
        assert_eq!(p.node(1).map(|b| b.len()), Some(1));
        assert_eq!(p.by_label["env:prod"].len(), 2);
        p.relabel(&[0, 1], &l1, &l2);
        assert!(!p.by_label.contains_key("env:prod"));
        assert_eq!(p.by_label["env:dev"].len(), 2);
    }
}
