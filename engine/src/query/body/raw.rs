//! The fields of a POST body as read, before validation: what the strict
//! and the lenient readers both produce, and what [`super::build`] turns
//! into a [`crate::query::request::QueryRequest`]. Strings borrow from the
//! body where they can ([`Text`]). An absent field and a JSON `null` are both `None`.
//! Counts are read as `i64` by both readers and checked for sign by the
//! build, so a value past `i64::MAX` is refused alike.

use std::borrow::Cow;

use serde::Deserialize;

use super::map_only::MapOnly;

/// A string of the body, borrowed unless it has escapes. serde borrows a
/// `Cow` only as a field of its own: inside an `Option` or a `Vec` it would
/// copy every string.
#[derive(Debug, Deserialize)]
pub(crate) struct Text<'a>(#[serde(borrow)] pub Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// A list of words (selector patterns, group-by keys, options).
pub(crate) type Words<'a> = Vec<Text<'a>>;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawBody<'a> {
    #[serde(borrow)]
    pub scope: Option<MapOnly<RawSelectors<'a>>>,
    #[serde(borrow)]
    pub selectors: Option<MapOnly<RawSelectors<'a>>>,
    pub window: Option<MapOnly<RawWindow>>,
    #[serde(borrow)]
    pub aggregations: Option<MapOnly<RawAggregations<'a>>>,
    #[serde(borrow)]
    pub format: Option<Text<'a>>,
    #[serde(borrow)]
    pub options: Option<Words<'a>>,
    pub timeout: Option<i64>,
    pub cardinality_limit: Option<i64>,
    pub limit: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawSelectors<'a> {
    #[serde(borrow)]
    pub nodes: Option<Words<'a>>,
    #[serde(borrow)]
    pub contexts: Option<Words<'a>>,
    #[serde(borrow)]
    pub instances: Option<Words<'a>>,
    #[serde(borrow)]
    pub dimensions: Option<Words<'a>>,
    #[serde(borrow)]
    pub labels: Option<Words<'a>>,
    #[serde(borrow)]
    pub alerts: Option<Words<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawWindow {
    pub after: Option<i64>,
    pub before: Option<i64>,
    pub duration: Option<i64>,
    pub points: Option<i64>,
    pub tier: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawAggregations<'a> {
    #[serde(borrow)]
    pub time: Option<MapOnly<RawTime<'a>>>,
    #[serde(borrow)]
    pub metrics: Option<Vec<MapOnly<RawPass<'a>>>>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawTime<'a> {
    #[serde(borrow)]
    pub time_group: Option<Text<'a>>,
    /// The lenient reader also takes a number, as its text.
    #[serde(borrow)]
    pub time_group_options: Option<Text<'a>>,
    pub time_resampling: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawPass<'a> {
    #[serde(borrow)]
    pub group_by: Option<Words<'a>>,
    /// The Grafana plugin sends `groupBy` for some panels; `group_by` wins.
    #[serde(borrow, rename = "groupBy")]
    pub group_by_camel: Option<Words<'a>>,
    #[serde(borrow)]
    pub group_by_label: Option<Words<'a>>,
    #[serde(borrow)]
    pub aggregation: Option<Text<'a>>,
}
