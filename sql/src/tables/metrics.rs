//! The `metrics` table: one row per visible metric with its names,
//! labels (JSON text), units, title, chart type, family, update_every and
//! tier-0 retention. A snapshot of the catalog taken when the query runs
//! its scan (never stale, never another node's metric).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray, UInt32Array};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Result;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::TableType;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use super::schema::metrics_schema;
use super::{engine_err, Source};

#[derive(Debug)]
pub struct MetricsTable {
    pub src: Source,
    schema: SchemaRef,
}

impl MetricsTable {
    pub fn new(src: Source) -> Self {
        MetricsTable { src, schema: metrics_schema() }
    }

    /// The visible metrics as one batch (under the engine's read locks for
    /// the time it takes to copy their names).
    pub fn snapshot(&self) -> Result<RecordBatch> {
        let st = self.src.engine.read().map_err(engine_err)?;
        let (cat, store) = (&st.catalog, &st.store);
        let reg = cat.registry();
        let ids: Vec<u32> = self.src.visible(cat).iter().collect();
        let text = |f: &dyn Fn(u32) -> String| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(ids.iter().map(|&m| f(m))))
        };
        let ts = |f: &dyn Fn(u32) -> Option<i64>| -> ArrayRef {
            Arc::new(
                TimestampNanosecondArray::from_iter(ids.iter().map(|&m| f(m).map(|s| s * 1_000_000_000)))
                    .with_timezone("UTC"),
            )
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(UInt32Array::from(ids.clone())),
            text(&|m| reg.node_of(m).id.clone()),
            text(&|m| reg.node_of(m).hostname.clone()),
            text(&|m| reg.context_of(m).id.clone()),
            text(&|m| reg.instance_of(m).id.clone()),
            text(&|m| reg.instance_of(m).name.clone()),
            text(&|m| reg.metric(m).dimension.clone()),
            text(&|m| serde_json::to_string(&reg.instance_of(m).labels).unwrap_or_default()),
            text(&|m| reg.context_of(m).units.clone()),
            text(&|m| reg.context_of(m).title.clone()),
            text(&|m| reg.context_of(m).chart_type.clone()),
            text(&|m| reg.context_of(m).family.clone()),
            Arc::new(Int64Array::from_iter_values(ids.iter().map(|&m| reg.metric(m).update_every))),
            ts(&|m| store.extent(m, 0).map(|e| e.first)),
            ts(&|m| store.extent(m, 0).map(|e| e.last)),
        ];
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

#[async_trait]
impl TableProvider for MetricsTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = self.snapshot()?;
        Ok(MemorySourceConfig::try_new_exec(&[vec![batch]], self.schema.clone(), projection.cloned())?)
    }
}
