//! Prometheus metrics of the agent (`metrics_listen` in `agent.yaml`, path `/metrics`).

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use clos_dataplane::Report;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    /// `added`, `replaced`, `deleted`, `unchanged`.
    op: String,
}

/// Every metric of one agent; shared by its tasks and its kernel thread.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub sessions_configured: Gauge,
    pub sessions_established: Gauge,
    pub routes_received: Gauge,
    pub bfd_sessions_configured: Gauge,
    pub bfd_sessions_up: Gauge,
    pub bfd_session_resets: Gauge,
    pub routes_advertised: Gauge,
    pub fib_routes: Gauge,
    fib_operations: Family<OpLabels, Counter>,
    fib_errors: Counter,
    fib_apply_seconds: Histogram,
    reconcile_seconds: Gauge<f64, AtomicU64>,
    pub controller_connected: Gauge,
    pub applied_revision: Gauge,
    pub endpoints: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("clos_agent");
        let m = Metrics {
            sessions_configured: Gauge::default(),
            sessions_established: Gauge::default(),
            routes_received: Gauge::default(),
            bfd_sessions_configured: Gauge::default(),
            bfd_sessions_up: Gauge::default(),
            bfd_session_resets: Gauge::default(),
            routes_advertised: Gauge::default(),
            fib_routes: Gauge::default(),
            fib_operations: Family::default(),
            fib_errors: Counter::default(),
            // 100 us .. ~3 s
            fib_apply_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 16)),
            reconcile_seconds: Gauge::default(),
            controller_connected: Gauge::default(),
            applied_revision: Gauge::default(),
            endpoints: Gauge::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "bgp_sessions_configured",
            "BGP sessions to the switches",
            m.sessions_configured.clone(),
        );
        r.register(
            "bgp_sessions_established",
            "BGP sessions in Established",
            m.sessions_established.clone(),
        );
        r.register(
            "bgp_routes_received",
            "Routes received from the switches (after import policy)",
            m.routes_received.clone(),
        );
        r.register(
            "bgp_routes_advertised",
            "Prefixes advertised to the switches, summed over sessions",
            m.routes_advertised.clone(),
        );
        r.register(
            "bfd_sessions_configured",
            "Uplinks with BFD configured whose neighbour is known",
            m.bfd_sessions_configured.clone(),
        );
        r.register(
            "bfd_sessions_up",
            "BFD sessions in Up",
            m.bfd_sessions_up.clone(),
        );
        r.register(
            "bfd_session_resets",
            "BGP sessions closed because BFD declared the switch down, since the speaker started",
            m.bfd_session_resets.clone(),
        );
        r.register(
            "fib_routes",
            "Routes of ours in the kernel",
            m.fib_routes.clone(),
        );
        r.register(
            "fib_operations",
            "Kernel route operations by kind",
            m.fib_operations.clone(),
        );
        r.register(
            "fib_errors",
            "Routes the kernel refused, and failed FIB updates",
            m.fib_errors.clone(),
        );
        r.register(
            "fib_apply_duration_seconds",
            "Time to apply one batch of route changes",
            m.fib_apply_seconds.clone(),
        );
        r.register(
            "fib_reconcile_duration_seconds",
            "Time the last full reconcile took",
            m.reconcile_seconds.clone(),
        );
        r.register(
            "controller_connected",
            "1 while the desired-state watch is connected",
            m.controller_connected.clone(),
        );
        r.register(
            "applied_revision",
            "The desired-state revision applied",
            m.applied_revision.clone(),
        );
        r.register("endpoints", "Endpoints on this host", m.endpoints.clone());
        Metrics { registry, ..m }
    }

    pub(crate) fn fib(&self, report: &Report, elapsed: Duration, full: bool) {
        for (op, n) in [
            ("added", report.added),
            ("replaced", report.replaced),
            ("deleted", report.deleted),
            ("unchanged", report.unchanged),
        ] {
            if n > 0 {
                self.fib_operations
                    .get_or_create(&OpLabels { op: op.into() })
                    .inc_by(n as u64);
            }
        }
        self.fib_errors.inc_by(report.errors.len() as u64);
        if full {
            self.reconcile_seconds.set(elapsed.as_secs_f64());
        } else {
            self.fib_apply_seconds.observe(elapsed.as_secs_f64());
        }
    }

    pub(crate) fn fib_failed(&self) {
        self.fib_errors.inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
