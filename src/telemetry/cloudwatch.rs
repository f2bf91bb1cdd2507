//! [`MetricsSink`] over CloudWatch `PutMetricData`, one call per run (none when a run has nothing
//! to put: an empty call is an error to CloudWatch, and costs a request).

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};

use super::{DIMENSION_FUNCTION_NAME, Datum, MetricsError, MetricsSink, Unit};

pub struct CloudWatchMetrics {
    client: Client,
    namespace: String,
    function_name: String,
}

impl CloudWatchMetrics {
    pub fn new(
        client: Client,
        namespace: impl Into<String>,
        function_name: impl Into<String>,
    ) -> CloudWatchMetrics {
        CloudWatchMetrics {
            client,
            namespace: namespace.into(),
            function_name: function_name.into(),
        }
    }
}

impl MetricsSink for CloudWatchMetrics {
    async fn put(&self, data: &[Datum]) -> Result<(), MetricsError> {
        if data.is_empty() {
            return Ok(());
        }
        let function =
            Dimension::builder().name(DIMENSION_FUNCTION_NAME).value(&self.function_name).build();
        let data = data
            .iter()
            .map(|d| {
                let extra = d
                    .dimensions
                    .iter()
                    .map(|(n, v)| Dimension::builder().name(*n).value(*v).build());
                MetricDatum::builder()
                    .metric_name(d.name)
                    .set_dimensions(Some(std::iter::once(function.clone()).chain(extra).collect()))
                    .value(d.value)
                    .unit(match d.unit {
                        Unit::Count => StandardUnit::Count,
                        Unit::Seconds => StandardUnit::Seconds,
                        Unit::Bytes => StandardUnit::Bytes,
                    })
                    .build()
            })
            .collect();
        self.client
            .put_metric_data()
            .namespace(&self.namespace)
            .set_metric_data(Some(data))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| MetricsError { namespace: self.namespace.clone(), source: Box::new(e) })
    }
}
