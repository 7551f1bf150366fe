//! Ids and names: nodes, contexts, instances, dimensions and the dense
//! [`MetricId`] of every (node, instance, dimension) series. The registry
//! only grows; ids are never reused, so a bitmap of MetricIds stays valid.

use std::collections::{BTreeMap, HashMap};

/// Why a number is not a whole `i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotWhole {
    /// A fraction, NaN or an infinity.
    Fraction,
    /// Whole, but past `i64` (`as i64` would saturate, and an error would
    /// then name `i64::MAX` instead of the number sent).
    OutOfRange,
}

/// `f` as an `i64` when it is a whole number that fits one exactly.
pub fn whole_i64(f: f64) -> Result<i64, NotWhole> {
    /// 2^63: the first magnitude an `f64` cannot convert to `i64` exactly.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if !f.is_finite() || f.fract() != 0.0 {
        Err(NotWhole::Fraction)
    } else if f.abs() >= LIMIT {
        Err(NotWhole::OutOfRange)
    } else {
        Ok(f as i64)
    }
}

/// Dense id of one time series; every selection is a bitmap of these.
pub type MetricId = u32;
pub type NodeIdx = u32;
pub type ContextIdx = u32;
pub type InstanceIdx = u32;

#[derive(Debug, Clone)]
pub struct Node {
    /// The id clients use in ingest (`node` field).
    pub id: String,
    pub hostname: String,
    /// Netdata clients key nodes by it (`mg`): the UUID ingest gave the
    /// node, else a stable one derived from the id.
    pub machine_guid: String,
    pub labels: BTreeMap<String, String>,
}

impl Node {
    /// The names a node pattern is tried against, in this order on every
    /// surface (queries, metadata, rooms, streams, MCP): the first name the
    /// pattern decides on, positively or negatively, decides, as Netdata's
    /// query target does.
    pub fn pattern_names(&self) -> [&str; 3] {
        node_pattern_names(&self.hostname, &self.machine_guid, &self.id)
    }
}

/// [`Node::pattern_names`] of a node's hostname, machine GUID and id.
pub fn node_pattern_names<'a>(hostname: &'a str, machine_guid: &'a str, id: &'a str) -> [&'a str; 3] {
    [hostname, machine_guid, id]
}

#[derive(Debug, Clone)]
pub struct Context {
    pub id: String,
    pub title: String,
    pub units: String,
    pub chart_type: String,
    pub family: String,
    pub priority: u32,
}

#[derive(Debug, Clone)]
pub struct Instance {
    pub node: NodeIdx,
    pub context: ContextIdx,
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// The instance's metrics in registration (priority) order.
    pub metrics: Vec<MetricId>,
}

#[derive(Debug, Clone)]
pub struct Metric {
    pub instance: InstanceIdx,
    pub dimension: String,
    pub update_every: i64,
    /// Order of the dimension inside its instance (Netdata's priority).
    pub priority: u32,
}

/// Metadata describing a series, as ingest supplies it.
#[derive(Debug, Clone, Default)]
pub struct SeriesMeta<'a> {
    pub node: &'a str,
    pub context: &'a str,
    pub instance: &'a str,
    pub dimension: &'a str,
    pub units: Option<&'a str>,
    pub title: Option<&'a str>,
    pub chart_type: Option<&'a str>,
    pub update_every: i64,
    pub labels: Option<&'a BTreeMap<String, String>>,
}

/// A name within a parent (an instance id within its node, a dimension
/// within its instance): a map key that [`ScopedKey`] lets a lookup borrow
/// as `(parent, &str)`, so finding a series allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Scoped(u32, String);

trait ScopedKey {
    fn parts(&self) -> (u32, &str);
}

impl ScopedKey for Scoped {
    fn parts(&self) -> (u32, &str) {
        (self.0, &self.1)
    }
}

impl ScopedKey for (u32, &str) {
    fn parts(&self) -> (u32, &str) {
        *self
    }
}

impl<'a> std::borrow::Borrow<dyn ScopedKey + 'a> for Scoped {
    fn borrow(&self) -> &(dyn ScopedKey + 'a) {
        self
    }
}

// Owned and borrowed keys hash and compare through `parts`, as `Borrow` requires.
impl std::hash::Hash for Scoped {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.parts().hash(h)
    }
}

impl std::hash::Hash for dyn ScopedKey + '_ {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.parts().hash(h)
    }
}

impl PartialEq for dyn ScopedKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn ScopedKey + '_ {}

/// All metadata, append-only. Lookups by name are hash maps; lookups by
/// index are vectors.
///
/// The name maps hash with foldhash (randomly seeded per map) instead of
/// std's SipHash: every ingest batch looks each of its series up four
/// times (node, context, instance, metric), and SipHash was about 5 % of
/// the server's CPU in a bulk load. The random seed keeps colliding names
/// from being chosen offline; unlike SipHash, foldhash does not claim to
/// resist a client that learns the seed by timing the server. Names come
/// only from clients with an ingest token, whose series count is capped
/// (`max_series`, per-token hourly limits) either way.
#[derive(Debug, Default)]
pub struct Registry {
    nodes: Vec<Node>,
    contexts: Vec<Context>,
    instances: Vec<Instance>,
    metrics: Vec<Metric>,
    node_by_id: NameMap<String, NodeIdx>,
    context_by_id: NameMap<String, ContextIdx>,
    instance_by_key: NameMap<Scoped, InstanceIdx>,
    /// Instances by id and by name, across nodes (selection looks names
    /// up here instead of testing every instance).
    instances_by_name: NameMap<String, Vec<InstanceIdx>>,
    metric_by_key: NameMap<Scoped, MetricId>,
    /// Bumped on every metadata change; clients use it for cache invalidation.
    generation: u64,
}

/// A map keyed by names (see [`Registry`] for the hasher).
type NameMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// What changed when a series was registered, so indexes update incrementally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    pub metric: MetricId,
    pub new_metric: bool,
    pub new_instance: bool,
}

/// Read access only: every change goes through `Registry`'s own methods,
/// which bump `generation`, so a selection resolved at one generation is
/// valid while it holds (see `query::cost::Resolved`, and ingest's
/// metric lookup under the read lock).
impl Registry {
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn contexts(&self) -> &[Context] {
        &self.contexts
    }

    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }

    pub fn metrics(&self) -> &[Metric] {
        &self.metrics
    }

    /// Bumped on every metadata change.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn node_idx(&self, id: &str) -> Option<NodeIdx> {
        self.node_by_id.get(id).copied()
    }

    pub fn context_idx(&self, id: &str) -> Option<ContextIdx> {
        self.context_by_id.get(id).copied()
    }

    pub fn instance_idx(&self, node: &str, instance: &str) -> Option<InstanceIdx> {
        let n = self.node_idx(node)?;
        self.instance_by_key.get(&(n, instance) as &dyn ScopedKey).copied()
    }

    /// Instances (on any node) whose id or name is `name`.
    pub fn instances_named(&self, name: &str) -> &[InstanceIdx] {
        self.instances_by_name.get(name).map_or(&[], Vec::as_slice)
    }

    pub fn metric_id(&self, node: &str, instance: &str, dimension: &str) -> Option<MetricId> {
        let n = self.node_idx(node)?;
        let i = self.instance_by_key.get(&(n, instance) as &dyn ScopedKey)?;
        self.metric_by_key.get(&(*i, dimension) as &dyn ScopedKey).copied()
    }

    /// Creates or updates a node; returns its index.
    pub fn upsert_node(
        &mut self,
        id: &str,
        hostname: Option<&str>,
        machine_guid: Option<&str>,
        labels: Option<&BTreeMap<String, String>>,
    ) -> NodeIdx {
        if let Some(&idx) = self.node_by_id.get(id) {
            let node = &mut self.nodes[idx as usize];
            if let Some(g) = machine_guid {
                if node.machine_guid != g {
                    node.machine_guid = g.to_string();
                    self.generation += 1;
                }
            }
            if let Some(h) = hostname {
                if node.hostname != h {
                    node.hostname = h.to_string();
                    self.generation += 1;
                }
            }
            if let Some(l) = labels {
                if !l.is_empty() && &node.labels != l {
                    node.labels = l.clone();
                    self.generation += 1;
                }
            }
            return idx;
        }
        let idx = self.nodes.len() as NodeIdx;
        self.nodes.push(Node {
            id: id.to_string(),
            hostname: hostname.unwrap_or(id).to_string(),
            machine_guid: machine_guid.map_or_else(|| machine_guid_for(id), str::to_string),
            labels: labels.cloned().unwrap_or_default(),
        });
        self.node_by_id.insert(id.to_string(), idx);
        self.generation += 1;
        idx
    }

    fn upsert_context(&mut self, meta: &SeriesMeta<'_>) -> ContextIdx {
        if let Some(&idx) = self.context_by_id.get(meta.context) {
            let ctx = &mut self.contexts[idx as usize];
            // Later metadata wins, as when a collector renames a chart.
            for (slot, new) in
                [(&mut ctx.units, meta.units), (&mut ctx.title, meta.title), (&mut ctx.chart_type, meta.chart_type)]
            {
                if let Some(new) = new {
                    if slot != new {
                        *slot = new.to_string();
                        self.generation += 1;
                    }
                }
            }
            return idx;
        }
        let idx = self.contexts.len() as ContextIdx;
        let family = meta.context.split('.').next().unwrap_or(meta.context).to_string();
        self.contexts.push(Context {
            id: meta.context.to_string(),
            title: meta.title.unwrap_or(meta.context).to_string(),
            units: meta.units.unwrap_or("").to_string(),
            chart_type: meta.chart_type.unwrap_or("line").to_string(),
            family,
            priority: 1000 + idx,
        });
        self.context_by_id.insert(meta.context.to_string(), idx);
        self.generation += 1;
        idx
    }

    /// Whether [`Registry::upsert_node`] with these arguments would change
    /// nothing (the node exists and every given field equals its own).
    pub fn node_unchanged(
        &self,
        id: &str,
        hostname: Option<&str>,
        machine_guid: Option<&str>,
        labels: Option<&BTreeMap<String, String>>,
    ) -> bool {
        let Some(&idx) = self.node_by_id.get(id) else { return false };
        let node = &self.nodes[idx as usize];
        hostname.is_none_or(|h| node.hostname == h)
            && machine_guid.is_none_or(|g| node.machine_guid == g)
            && labels.is_none_or(|l| l.is_empty() || &node.labels == l)
    }

    /// The metric [`Registry::register`] would return for `meta` when it
    /// would change nothing (and so leave `generation` alone): the series
    /// is known, and every metadata field `meta` gives equals the one held.
    /// `None` when registering would create or update something. A
    /// lookup under a read lock, so ingest can skip the write lock for
    /// batches of known series.
    pub fn find_unchanged(&self, meta: &SeriesMeta<'_>) -> Option<MetricId> {
        let node = self.node_idx(meta.node)?;
        let ctx_idx = *self.context_by_id.get(meta.context)?;
        let ctx = &self.contexts[ctx_idx as usize];
        let same = |held: &str, given: Option<&str>| given.is_none_or(|g| held == g);
        if !(same(&ctx.units, meta.units) && same(&ctx.title, meta.title) && same(&ctx.chart_type, meta.chart_type)) {
            return None;
        }
        let instance = *self.instance_by_key.get(&(node, meta.instance) as &dyn ScopedKey)?;
        // An instance named in another context is not this series: the
        // full checks refuse it.
        if self.instances[instance as usize].context != ctx_idx {
            return None;
        }
        let labels = &self.instances[instance as usize].labels;
        if meta.labels.is_some_and(|l| !l.is_empty() && labels != l) {
            return None;
        }
        self.metric_by_key.get(&(instance, meta.dimension) as &dyn ScopedKey).copied()
    }

    /// Registers (or finds) the series described by `meta`.
    pub fn register(&mut self, meta: &SeriesMeta<'_>) -> Registered {
        let node = self.upsert_node(meta.node, None, None, None);
        let context = self.upsert_context(meta);
        let mut new_instance = false;
        let instance = match self.instance_by_key.get(&(node, meta.instance) as &dyn ScopedKey) {
            Some(&i) => {
                if let Some(l) = meta.labels {
                    let inst = &mut self.instances[i as usize];
                    if !l.is_empty() && &inst.labels != l {
                        inst.labels = l.clone();
                        self.generation += 1;
                    }
                }
                i
            }
            None => {
                let i = self.instances.len() as InstanceIdx;
                self.instances.push(Instance {
                    node,
                    context,
                    id: meta.instance.to_string(),
                    name: meta.instance.to_string(),
                    labels: meta.labels.cloned().unwrap_or_default(),
                    metrics: Vec::new(),
                });
                self.instance_by_key.insert(Scoped(node, meta.instance.to_string()), i);
                // The name starts as the id and is never changed.
                self.instances_by_name.entry(meta.instance.to_string()).or_default().push(i);
                self.generation += 1;
                new_instance = true;
                i
            }
        };
        if let Some(&m) = self.metric_by_key.get(&(instance, meta.dimension) as &dyn ScopedKey) {
            return Registered { metric: m, new_metric: false, new_instance };
        }
        let id = self.metrics.len() as MetricId;
        let dims = &mut self.instances[instance as usize].metrics;
        let priority = dims.len() as u32;
        dims.push(id);
        self.metrics.push(Metric {
            instance,
            dimension: meta.dimension.to_string(),
            update_every: meta.update_every,
            priority,
        });
        self.metric_by_key.insert(Scoped(instance, meta.dimension.to_string()), id);
        self.generation += 1;
        Registered { metric: id, new_metric: true, new_instance }
    }

    pub fn metric(&self, id: MetricId) -> &Metric {
        &self.metrics[id as usize]
    }

    pub fn instance_of(&self, id: MetricId) -> &Instance {
        &self.instances[self.metrics[id as usize].instance as usize]
    }

    pub fn node_of(&self, id: MetricId) -> &Node {
        &self.nodes[self.instance_of(id).node as usize]
    }

    pub fn context_of(&self, id: MetricId) -> &Context {
        &self.contexts[self.instance_of(id).context as usize]
    }
}

/// A deterministic UUID-shaped id for a node: Netdata clients (and the
/// Grafana plugin) key nodes by machine GUID, so it must be stable.
pub fn machine_guid_for(node_id: &str) -> String {
    let a = fnv1a64(node_id.as_bytes(), 0xcbf2_9ce4_8422_2325);
    let b = fnv1a64(node_id.as_bytes(), 0x8422_2325_cbf2_9ce4);
    let hex = format!("{a:016x}{b:016x}");
    format!("{}-{}-4{}-8{}-{}", &hex[0..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..32])
}

fn fnv1a64(bytes: &[u8], seed: u64) -> u64 {
    let mut h = seed;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_convert_only_when_exact() {
        assert_eq!(whole_i64(-600.0), Ok(-600));
        assert_eq!(whole_i64(1.5), Err(NotWhole::Fraction));
        assert_eq!(whole_i64(f64::NAN), Err(NotWhole::Fraction));
        assert_eq!(whole_i64(f64::INFINITY), Err(NotWhole::Fraction));
        assert_eq!(whole_i64(1e23), Err(NotWhole::OutOfRange));
        assert_eq!(whole_i64(-9_223_372_036_854_775_808.0), Err(NotWhole::OutOfRange));
        assert_eq!(whole_i64(9_007_199_254_740_992.0), Ok(9_007_199_254_740_992));
    }

    fn meta<'a>(node: &'a str, inst: &'a str, dim: &'a str) -> SeriesMeta<'a> {
        SeriesMeta {
            node,
            context: "system.cpu",
            instance: inst,
            dimension: dim,
            update_every: 1,
            ..Default::default()
        }
    }

    #[test]
    fn register_is_idempotent_and_dense() {
        let mut r = Registry::default();
        let a = r.register(&meta("n1", "system.cpu", "user"));
        let b = r.register(&meta("n1", "system.cpu", "system"));
        let a2 = r.register(&meta("n1", "system.cpu", "user"));
        let c = r.register(&meta("n2", "system.cpu", "user"));
        assert_eq!((a.metric, b.metric, a2.metric, c.metric), (0, 1, 0, 2));
        assert!(a.new_metric && !a2.new_metric && c.new_instance);
        assert_eq!(r.metric(1).priority, 1);
        assert_eq!(r.node_of(2).id, "n2");
        assert_eq!(r.metric_id("n2", "system.cpu", "user"), Some(2));
    }

    proptest::proptest! {
        /// `find_unchanged` answers exactly when `register` would change
        /// nothing, with the metric it would return; `node_unchanged`
        /// exactly when `upsert_node` would. Over random sequences of
        /// series and node metadata drawn from small sets, so repeats,
        /// renames and relabels are common.
        #[test]
        fn unchanged_lookups_agree_with_register(
            steps in proptest::collection::vec(
                (0usize..2, 0usize..3, 0usize..2, 0usize..2, 0usize..3, 0usize..3, 0usize..3, 0usize..3, proptest::bool::ANY),
                1..60,
            ),
        ) {
            let names = ["a", "b", "c"];
            let opt = |k: usize| [None, Some("x"), Some("y")][k];
            let label_sets: [BTreeMap<String, String>; 3] = [
                BTreeMap::new(),
                BTreeMap::from([("k".to_string(), "1".to_string())]),
                BTreeMap::from([("k".to_string(), "2".to_string())]),
            ];
            let mut r = Registry::default();
            for (node, ctx, inst, dim, units, title, labels, host, as_node) in steps {
                let before = r.generation;
                if as_node {
                    let l = Some(&label_sets[labels]);
                    let unchanged = r.node_unchanged(names[node], opt(host), None, l);
                    r.upsert_node(names[node], opt(host), None, l);
                    proptest::prop_assert_eq!(unchanged, r.generation == before);
                    continue;
                }
                let meta = SeriesMeta {
                    node: names[node],
                    context: names[ctx],
                    instance: names[inst],
                    dimension: names[dim],
                    units: opt(units),
                    title: opt(title),
                    chart_type: None,
                    update_every: 1,
                    labels: Some(&label_sets[labels]),
                };
                // Ingest refuses an instance named in another context
                // before it registers anything (`validate_contexts`); the
                // fast lookup must not take it either.
                if let Some(i) = r.instance_idx(meta.node, meta.instance) {
                    if r.contexts[r.instances[i as usize].context as usize].id != meta.context {
                        proptest::prop_assert_eq!(r.find_unchanged(&meta), None);
                        continue;
                    }
                }
                let found = r.find_unchanged(&meta);
                let registered = r.register(&meta);
                proptest::prop_assert_eq!(found.is_some(), r.generation == before);
                if let Some(m) = found {
                    proptest::prop_assert_eq!(m, registered.metric);
                }
            }
        }
    }

    #[test]
    fn machine_guid_is_stable_and_uuid_shaped() {
        let g = machine_guid_for("web-1");
        assert_eq!(g, machine_guid_for("web-1"));
        assert_ne!(g, machine_guid_for("web-2"));
        assert_eq!(g.len(), 36);
        assert_eq!(g.matches('-').count(), 4);
    }
}
