//! The one request type every data endpoint parses into (v1/v2/v3 GET,
//! v3 POST, Cloud-style room POST).

use crate::index::{LabelFilter, SimplePattern};
use crate::query::time_group::TimeGroup;

/// Pattern selectors over the five kinds of names (plus labels).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selectors {
    pub nodes: Option<SimplePattern>,
    pub contexts: Option<SimplePattern>,
    pub instances: Option<SimplePattern>,
    pub dimensions: Option<SimplePattern>,
    pub labels: Option<LabelFilter>,
    /// strata has no alert engine: a non-empty alert selector matches nothing.
    pub alerts: Option<SimplePattern>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupByKey {
    Dimension,
    Instance,
    Node,
    Label,
    Context,
    Units,
    Selected,
    PercentageOfInstance,
}

impl GroupByKey {
    pub fn parse(s: &str) -> Option<GroupByKey> {
        Some(match s {
            "dimension" => GroupByKey::Dimension,
            // Older Grafana plugin versions send `chart`.
            "instance" | "chart" => GroupByKey::Instance,
            "node" => GroupByKey::Node,
            "label" => GroupByKey::Label,
            "context" => GroupByKey::Context,
            "units" => GroupByKey::Units,
            "selected" => GroupByKey::Selected,
            "percentage-of-instance" => GroupByKey::PercentageOfInstance,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            GroupByKey::Dimension => "dimension",
            GroupByKey::Instance => "instance",
            GroupByKey::Node => "node",
            GroupByKey::Label => "label",
            GroupByKey::Context => "context",
            GroupByKey::Units => "units",
            GroupByKey::Selected => "selected",
            GroupByKey::PercentageOfInstance => "percentage-of-instance",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    Average,
    Sum,
    Min,
    Max,
    Extremes,
    Percentage,
}

impl Aggregation {
    pub fn parse(s: &str) -> Option<Aggregation> {
        Some(match s {
            "average" | "avg" | "mean" => Aggregation::Average,
            "sum" => Aggregation::Sum,
            "min" => Aggregation::Min,
            "max" => Aggregation::Max,
            "extremes" => Aggregation::Extremes,
            "percentage" => Aggregation::Percentage,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Aggregation::Average => "average",
            Aggregation::Sum => "sum",
            Aggregation::Min => "min",
            Aggregation::Max => "max",
            Aggregation::Extremes => "extremes",
            Aggregation::Percentage => "percentage",
        }
    }
}

/// One group-by pass: the keys, the label keys, and how members combine.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupByPass {
    pub keys: Vec<GroupByKey>,
    pub labels: Vec<String>,
    pub aggregation: Aggregation,
}

impl Default for GroupByPass {
    fn default() -> Self {
        GroupByPass { keys: vec![GroupByKey::Dimension], labels: Vec::new(), aggregation: Aggregation::Average }
    }
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json2,
    Json,
    Csv,
    Tsv,
    Ssv,
    SsvComma,
    Array,
    Markdown,
    Html,
    CsvJsonArray,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        Some(match s {
            "json2" => Format::Json2,
            "json" => Format::Json,
            "csv" => Format::Csv,
            "tsv" | "tsv-excel" => Format::Tsv,
            "ssv" => Format::Ssv,
            "ssvcomma" => Format::SsvComma,
            "array" => Format::Array,
            "markdown" => Format::Markdown,
            "html" => Format::Html,
            "csvjsonarray" => Format::CsvJsonArray,
            _ => return None,
        })
    }
}

/// Query options (`options=`), as plain flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub jsonwrap: bool,
    pub minify: bool,
    pub debug: bool,
    pub nonzero: bool,
    pub null2zero: bool,
    /// v1 `array`/`ssv`: a row is the span of its values and 0
    /// (`max(0, v..) - min(0, v..)`), not their sum.
    pub min2max: bool,
    pub absolute: bool,
    pub percentage: bool,
    pub flip: bool,
    pub unaligned: bool,
    pub seconds: bool,
    pub ms: bool,
    pub natural_points: bool,
    pub virtual_points: bool,
    pub anomaly_bit: bool,
    pub raw: bool,
    pub match_ids: bool,
    pub match_names: bool,
    pub objectrows: bool,
    pub google_json: bool,
    pub all_dimensions: bool,
    pub group_by_labels: bool,
    pub label_quotes: bool,
    pub minimal_stats: bool,
    pub long_json_keys: bool,
    pub jw_anomaly_rates: bool,
    pub details: bool,
    pub rfc3339: bool,
    pub selected_tier: bool,
}

impl Options {
    /// The names of the flags that are set, in a stable order.
    pub fn names(&self) -> Vec<&'static str> {
        let flags = [
            (self.jsonwrap, "jsonwrap"),
            (self.minify, "minify"),
            (self.debug, "debug"),
            (self.nonzero, "nonzero"),
            (self.null2zero, "null2zero"),
            (self.min2max, "min2max"),
            (self.absolute, "absolute"),
            (self.percentage, "percentage"),
            (self.flip, "flip"),
            (self.unaligned, "unaligned"),
            (self.seconds, "seconds"),
            (self.ms, "ms"),
            (self.natural_points, "natural-points"),
            (self.virtual_points, "virtual-points"),
            (self.anomaly_bit, "anomaly-bit"),
            (self.raw, "raw"),
            (self.match_ids, "match-ids"),
            (self.match_names, "match-names"),
            (self.objectrows, "objectrows"),
            (self.google_json, "google_json"),
            (self.all_dimensions, "all-dimensions"),
            (self.group_by_labels, "group-by-labels"),
            (self.label_quotes, "label-quotes"),
            (self.minimal_stats, "minimal-stats"),
            (self.long_json_keys, "long-json-keys"),
            (self.jw_anomaly_rates, "jw-anomaly-rates"),
            (self.details, "details"),
            (self.rfc3339, "rfc3339"),
            (self.selected_tier, "selected-tier"),
        ];
        flags.into_iter().filter(|(on, _)| *on).map(|(_, n)| n).collect()
    }

    /// Sets the flag named `name`; false for unknown names.
    pub fn set(&mut self, name: &str) -> bool {
        let flag = match name {
            "jsonwrap" => &mut self.jsonwrap,
            "minify" => &mut self.minify,
            "debug" | "plan" => &mut self.debug,
            "nonzero" => &mut self.nonzero,
            "null2zero" => &mut self.null2zero,
            "absolute" | "abs" | "absolute_sum" | "absolute-sum" => &mut self.absolute,
            "percentage" => &mut self.percentage,
            "flip" | "reversed" | "reverse" => &mut self.flip,
            "unaligned" => &mut self.unaligned,
            "seconds" => &mut self.seconds,
            "ms" | "milliseconds" => &mut self.ms,
            "natural-points" => &mut self.natural_points,
            "virtual-points" => &mut self.virtual_points,
            "anomaly-bit" => &mut self.anomaly_bit,
            "raw" => &mut self.raw,
            "match-ids" | "match_ids" => &mut self.match_ids,
            "match-names" | "match_names" => &mut self.match_names,
            "objectrows" => &mut self.objectrows,
            "google_json" | "google-json" => &mut self.google_json,
            "all-dimensions" => &mut self.all_dimensions,
            "group-by-labels" => &mut self.group_by_labels,
            "label-quotes" => &mut self.label_quotes,
            "minimal-stats" | "minimal" => &mut self.minimal_stats,
            "long-json-keys" | "long-keys" => &mut self.long_json_keys,
            "jw-anomaly-rates" => &mut self.jw_anomaly_rates,
            "details" => &mut self.details,
            "rfc3339" => &mut self.rfc3339,
            "selected-tier" => &mut self.selected_tier,
            "min2max" => &mut self.min2max,
            // Accepted for compatibility; they only affect badges and v1 extras.
            "display-absolute"
            | "display_absolute"
            | "average"
            | "min"
            | "max"
            | "cardinality-limit-all"
            | "mcp-info"
            | "showcustomvars"
            | "allow_past"
            | "anomaly-rates" => return true,
            _ => return false,
        };
        *flag = true;
        true
    }
}

/// Which API shape the caller speaks; affects defaults and naming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    V1,
    V2,
    V3,
}

/// A parsed, validated data query.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRequest {
    pub api: ApiVersion,
    pub scope: Selectors,
    pub selectors: Selectors,
    pub after: i64,
    pub before: i64,
    pub points: u64,
    pub tier: Option<usize>,
    pub time_group: TimeGroup,
    pub time_resampling: i64,
    pub passes: Vec<GroupByPass>,
    pub options: Options,
    pub format: Format,
    pub timeout_ms: u64,
    pub cardinality_limit: u64,
    /// Set by the server from the caller's token: only these nodes exist for
    /// this query (hostname, machine GUID or node id).
    pub allowed_nodes: Option<crate::index::SimplePattern>,
    /// Set by the server for queries made through a Cloud-style room: only
    /// the room's nodes exist for this query.
    pub room: Option<crate::meta::RoomFilter>,
}

impl QueryRequest {
    /// Defaults of a v2/v3 query before any parameter is applied.
    pub fn new(api: ApiVersion) -> Self {
        let mut options = Options::default();
        if api != ApiVersion::V1 {
            // v2/v3 always run with these (Netdata adds them unconditionally).
            options.virtual_points = true;
            options.jsonwrap = true;
            options.jw_anomaly_rates = true;
        }
        QueryRequest {
            api,
            scope: Selectors::default(),
            selectors: Selectors::default(),
            after: -600,
            before: 0,
            points: 0,
            tier: None,
            time_group: TimeGroup::default(),
            time_resampling: 0,
            passes: vec![GroupByPass::default()],
            options,
            format: if api == ApiVersion::V1 { Format::Json } else { Format::Json2 },
            timeout_ms: 0,
            cardinality_limit: 0,
            allowed_nodes: None,
            room: None,
        }
    }

    /// Netdata's automatic option adjustments, applied once after parsing.
    pub fn finish(&mut self) {
        if self.passes.is_empty() {
            self.passes.push(GroupByPass::default());
        }
        // `selected` disables later passes.
        if let Some(i) = self.passes.iter().position(|p| p.keys.contains(&GroupByKey::Selected)) {
            self.passes.truncate(i + 1);
        }
        // A `label` grouping without label keys is dropped, as Netdata
        // drops it: a pass left with no key is `dimension` if it is the
        // first, else it and the passes after it go.
        for (i, p) in self.passes.iter_mut().enumerate() {
            if p.labels.is_empty() && p.keys.contains(&GroupByKey::Label) {
                p.keys.retain(|&k| k != GroupByKey::Label);
                if p.keys.is_empty() && i > 0 {
                    self.passes.truncate(i);
                    break;
                }
            }
        }
        for p in &mut self.passes {
            if !p.labels.is_empty() && !p.keys.contains(&GroupByKey::Label) {
                p.keys.push(GroupByKey::Label);
            }
            for exclusive in [GroupByKey::Selected, GroupByKey::PercentageOfInstance] {
                if p.keys.contains(&exclusive) {
                    p.keys = vec![exclusive];
                }
            }
            // Percentage of instance is instance grouping with a percentage.
            if p.keys == [GroupByKey::PercentageOfInstance] {
                p.aggregation = Aggregation::Percentage;
            }
            if p.keys.is_empty() {
                p.keys.push(GroupByKey::Dimension);
            }
        }
        // As asked, before earlier passes inherit later passes' keys (a
        // `node` pass before a `dimension` one is not dimension-based).
        let grouped = self.passes.iter().any(|p| !p.keys.contains(&GroupByKey::Dimension));
        // Earlier passes inherit the keys of later passes, so every inner group
        // maps into exactly one outer group.
        for i in (0..self.passes.len().saturating_sub(1)).rev() {
            let (inner, outer) = self.passes.split_at_mut(i + 1);
            let (inner, outer) = (&mut inner[i], &outer[0]);
            if matches!(inner.keys[..], [GroupByKey::Selected]) {
                continue;
            }
            for &k in &outer.keys {
                let k = if k == GroupByKey::PercentageOfInstance { GroupByKey::Instance } else { k };
                if k != GroupByKey::Selected && !inner.keys.contains(&k) {
                    inner.keys.push(k);
                }
            }
            for l in &outer.labels {
                if !inner.labels.contains(l) {
                    inner.labels.push(l.clone());
                }
            }
        }
        let percentage_grouping = self
            .passes
            .iter()
            .any(|p| p.aggregation == Aggregation::Percentage || p.keys.contains(&GroupByKey::PercentageOfInstance));
        // v2/v3 make values absolute for non-dimension grouping and for
        // percentages; v1 (Netdata 1.37, the oracle) keeps signs.
        if self.api != ApiVersion::V1 && (grouped || self.options.percentage) {
            self.options.absolute = true;
        }
        if percentage_grouping {
            self.options.percentage = false;
        }
        if self.options.debug {
            self.options.minify = false;
        }
    }

    /// Whether the query reads its whole scope, not only what it selects:
    /// for hidden totals, or as v1 does (a chart read as a unit).
    pub fn reads_scope(&self) -> bool {
        self.needs_hidden() || self.api == ApiVersion::V1
    }

    /// Hidden dimensions (in scope, not selected) are only needed for totals.
    pub fn needs_hidden(&self) -> bool {
        self.options.percentage
            || self
                .passes
                .iter()
                .any(|p| p.aggregation == Aggregation::Percentage || p.keys.contains(&GroupByKey::PercentageOfInstance))
    }
}
