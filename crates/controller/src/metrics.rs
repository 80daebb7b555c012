//! Prometheus metrics of the controller, served at `/metrics` in the text exposition format.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::writer::Shared;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScopeLabels {
    /// `subnet` or `pool` (floating/anycast).
    scope: String,
    name: String,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    allocations: Counter,
    releases: Counter,
    batch_size: Histogram,
    allocated: Family<ScopeLabels, Gauge>,
    size: Family<ScopeLabels, Gauge>,
}

/// Cheap to clone; every clone updates the same registry.
#[derive(Clone, Debug)]
pub struct Metrics(Arc<Inner>);

fn latency_histogram() -> Histogram {
    // 50 us .. ~1.6 s
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("clos");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "API requests by method, route and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "API request latency by method and route",
            latency.clone(),
        );
        let allocations = Counter::default();
        registry.register(
            "ipam_allocations",
            "Addresses allocated through the API",
            allocations.clone(),
        );
        let releases = Counter::default();
        registry.register(
            "ipam_releases",
            "Addresses released through the API",
            releases.clone(),
        );
        let batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        registry.register(
            "ipam_write_batch_size",
            "IPAM requests committed per store transaction",
            batch_size.clone(),
        );
        let allocated = Family::<ScopeLabels, Gauge>::default();
        registry.register(
            "ipam_allocated_addresses",
            "Allocated addresses (including held fixed ones) per subnet or floating/anycast pool",
            allocated.clone(),
        );
        let size = Family::<ScopeLabels, Gauge>::default();
        registry.register(
            "ipam_size_addresses",
            "Addresses per subnet or floating/anycast pool (saturated at 2^63-1)",
            size.clone(),
        );
        Metrics(Arc::new(Inner {
            registry,
            requests,
            latency,
            allocations,
            releases,
            batch_size,
            allocated,
            size,
        }))
    }

    pub fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.0
            .requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                route: route.to_string(),
                status,
            })
            .inc();
        self.0
            .latency
            .get_or_create(&RouteLabels {
                method: method.to_string(),
                route: route.to_string(),
            })
            .observe(seconds);
    }

    pub fn allocated(&self) {
        self.0.allocations.inc();
    }

    pub fn released(&self) {
        self.0.releases.inc();
    }

    pub fn batch(&self, n: usize) {
        self.0.batch_size.observe(n as f64);
    }

    /// The text exposition, with usage gauges refreshed from the allocator.
    pub fn render(&self, shared: &Shared) -> String {
        self.0.allocated.clear();
        self.0.size.clear();
        let set = |scope: &str, name: &str, u: clos_ipam::Usage| {
            let l = ScopeLabels {
                scope: scope.to_string(),
                name: name.to_string(),
            };
            self.0
                .allocated
                .get_or_create(&l)
                .set(i64::try_from(u.allocated).unwrap_or(i64::MAX));
            self.0
                .size
                .get_or_create(&l)
                .set(i64::try_from(u.size).unwrap_or(i64::MAX));
        };
        for name in shared.subnets.keys() {
            if let Ok(u) = shared.ipam.subnet_usage(name) {
                // The IPv6 part of a dual-stack subnet, under the subnet's name.
                if crate::convert::is_v6_part(name) {
                    set("subnet_ipv6", crate::convert::api_subnet(name), u);
                } else {
                    set("subnet", name, u);
                }
            }
        }
        for name in shared.pools.keys() {
            if let Ok(u) = shared.ipam.pool_usage(name) {
                set("pool", name, u);
            }
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.0.registry) {
            tracing::error!(error = %e, "encoding metrics");
        }
        out
    }
}
