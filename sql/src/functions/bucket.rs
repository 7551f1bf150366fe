//! `nd_bucket(step_seconds, ts)`: the END of the Netdata bucket holding
//! `ts`. Netdata buckets are right-closed, `(end - step, end]`, and
//! labelled by their end, aligned to multiples of `step` since the epoch:
//! `nd_bucket(60, ts)` maps 12:00:01 .. 12:01:00 to 12:01:00. (DataFusion's
//! `date_bin` floors instead: `[start, start + step)`.)

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, TimestampNanosecondArray};
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampNanosecondType};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

pub const NAME: &str = "nd_bucket";

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NdBucket {
    signature: Signature,
}

impl NdBucket {
    pub fn new() -> Self {
        NdBucket { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

impl Default for NdBucket {
    fn default() -> Self {
        NdBucket::new()
    }
}

/// The bucket end of `ns` for buckets of `step_ns`; `None` past the last
/// nanosecond timestamp (2262-04-11), where it has no value.
pub fn bucket_end(ns: i64, step_ns: i64) -> Option<i64> {
    let q = ns.div_euclid(step_ns);
    if ns.rem_euclid(step_ns) == 0 {
        Some(ns)
    } else {
        (q + 1).checked_mul(step_ns)
    }
}

fn past_the_end<T>(v: i64, step: i64) -> Result<T> {
    exec_err!("nd_bucket({step}, ts): the bucket of {v} ns ends past the last timestamp there is (2262-04-11)")
}

fn ts_type(t: &DataType) -> Option<DataType> {
    match t {
        DataType::Timestamp(_, tz) => Some(DataType::Timestamp(TimeUnit::Nanosecond, tz.clone())),
        _ => None,
    }
}

impl ScalarUDFImpl for NdBucket {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [s, t] if s.is_integer() => match ts_type(t) {
                Some(t) => Ok(vec![DataType::Int64, t]),
                None => plan_err!("nd_bucket(step_seconds, ts): ts must be a timestamp, not {t}"),
            },
            _ => plan_err!("nd_bucket takes (step_seconds, ts), e.g. nd_bucket(60, ts)"),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.get(1).and_then(ts_type) {
            Some(t) => Ok(t),
            None => plan_err!("nd_bucket(step_seconds, ts): ts must be a timestamp"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [step, ts] = args.args.as_slice() else { return exec_err!("nd_bucket takes two arguments") };
        let ColumnarValue::Scalar(ScalarValue::Int64(Some(step))) = step else {
            return exec_err!("nd_bucket: the step must be a constant number of seconds");
        };
        if *step <= 0 {
            return exec_err!("nd_bucket: the step must be positive, not {step}");
        }
        let Some(step_ns) = step.checked_mul(1_000_000_000) else {
            return exec_err!("nd_bucket: a step of {step} s is past the timestamp range");
        };
        let tz = match ts.data_type() {
            DataType::Timestamp(_, tz) => tz,
            t => return exec_err!("nd_bucket: ts must be a timestamp, not {t}"),
        };
        Ok(match ts {
            ColumnarValue::Scalar(ScalarValue::TimestampNanosecond(v, tz)) => {
                let end = match *v {
                    Some(v) => Some(bucket_end(v, step_ns).map_or_else(|| past_the_end(v, *step), Ok)?),
                    None => None,
                };
                ColumnarValue::Scalar(ScalarValue::TimestampNanosecond(end, tz.clone()))
            }
            ColumnarValue::Scalar(s) => return exec_err!("nd_bucket: unexpected timestamp {s}"),
            ColumnarValue::Array(a) => {
                let a = a.as_primitive_opt::<TimestampNanosecondType>().ok_or_else(|| {
                    datafusion::common::exec_datafusion_err!("nd_bucket: ts must be a nanosecond timestamp")
                })?;
                let out: TimestampNanosecondArray =
                    a.try_unary(|v| bucket_end(v, step_ns).map_or_else(|| past_the_end(v, *step), Ok))?;
                ColumnarValue::Array(Arc::new(out.with_timezone_opt(tz)))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::bucket_end;

    #[test]
    fn buckets_are_right_closed_and_labelled_by_their_end() {
        let s = 60_000_000_000;
        assert_eq!(bucket_end(60 * 1_000_000_000, s), Some(60 * 1_000_000_000));
        assert_eq!(bucket_end(61 * 1_000_000_000, s), Some(120 * 1_000_000_000));
        assert_eq!(bucket_end(1_000_000_000, s), Some(s));
        assert_eq!(bucket_end(-1, s), Some(0));
        assert_eq!(bucket_end(i64::MAX - 5, s), None, "past the last timestamp");
    }
}
