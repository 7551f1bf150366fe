//! strata's SQL functions: Netdata's time groups as `nd_*` aggregate
//! functions ([`aggregate`]) and the `nd_bucket` label function
//! ([`bucket`]). They depend on DataFusion and on the engine's kernels only
//! (no storage), so any `SessionContext` or `SessionState` registers them
//! with [`register`]; a Ballista executor's registry takes them from
//! [`aggregates`] directly (it refuses `register_udaf`; see `ballista/`).

pub mod aggregate;
pub mod bucket;

use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};

pub use aggregate::{NdAggregate, NdFunction};
pub use bucket::NdBucket;

/// Every `nd_*` aggregate function.
pub fn aggregates() -> Vec<AggregateUDF> {
    NdFunction::ALL.iter().map(|&f| AggregateUDF::from(NdAggregate::new(f))).collect()
}

/// Registers the `nd_*` aggregates and `nd_bucket` on `registry` (a
/// `SessionContext` or `SessionState`).
pub fn register(registry: &mut dyn FunctionRegistry) -> datafusion::error::Result<()> {
    for f in aggregates() {
        registry.register_udaf(std::sync::Arc::new(f))?;
    }
    registry.register_udf(std::sync::Arc::new(ScalarUDF::from(NdBucket::new())))?;
    Ok(())
}
