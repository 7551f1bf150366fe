//! The samples tables as a DataFusion `TableProvider` (see [`super`] for
//! locking and the allowlist, [`super::filters`] for pushdown).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Result;
use datafusion::datasource::TableType;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use strata_engine::storage::StoreView;

use super::filters::{classify, resolve_meta, time_range, Kind, MetricNames, TimeRange};
use super::scan::{SamplesExec, ScanData};
use super::schema::{samples_schema, Tier};
use super::{engine_err, Source};

#[derive(Debug)]
pub struct SamplesTable {
    pub src: Source,
    pub tier: Tier,
    schema: SchemaRef,
}

impl SamplesTable {
    pub fn new(src: Source, tier: Tier) -> Self {
        SamplesTable { src, tier, schema: samples_schema(tier) }
    }

    /// The visible metrics the filters keep, with their update_every, and
    /// a view of their data in `range` (the one short moment under the
    /// engine's read locks).
    pub fn plan(&self, filters: &[Expr], range: TimeRange) -> Result<(Vec<(MetricNames, i64)>, StoreView)> {
        let st = self.src.engine.read().map_err(engine_err)?;
        let visible = self.src.visible(&st.catalog);
        let metrics = resolve_meta(&st.catalog, &visible, filters)?;
        let mut view = StoreView::of(&st.store, metrics.iter().map(|m| m.id));
        if !range.is_empty() {
            view.attach_open(&st.store, |_, _| (range.from_excl, range.to_incl));
        }
        drop(st);
        let metrics = metrics.into_iter().filter_map(|m| view.update_every(m.id).map(|ue| (m, ue))).collect();
        Ok((metrics, view))
    }
}

#[async_trait]
impl TableProvider for SamplesTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| match classify(f) {
                Kind::Meta | Kind::Time => TableProviderFilterPushDown::Exact,
                Kind::Other => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let range = time_range(filters);
        let (metrics, view) = self.plan(filters, range)?;
        let projection: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let data = ScanData {
            view,
            metrics: if range.is_empty() { Vec::new() } else { metrics },
            tier: self.tier,
            range,
            projection,
            schema: self.schema.clone(),
            cancel: self.src.cancel.clone(),
        };
        let partitions = state.config().target_partitions().max(1);
        Ok(Arc::new(SamplesExec::new(Arc::new(data), partitions, limit)?))
    }
}
