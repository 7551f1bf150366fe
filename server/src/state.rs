//! Shared server state handed to every handler.

use std::sync::Arc;

use strata_engine::Engine;

use crate::auth::Auth;

/// Size caps on request bodies.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub query: usize,
    pub ingest: usize,
    /// The whole body must arrive within this.
    pub read_timeout: std::time::Duration,
    /// Every request must be answered within this (504 otherwise).
    pub request_timeout: std::time::Duration,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            query: 8 << 20,
            ingest: 64 << 20,
            read_timeout: std::time::Duration::from_secs(60),
            request_timeout: std::time::Duration::from_secs(120),
        }
    }
}

/// Who this server is, as Netdata clients expect an agent to say.
#[derive(Debug, Clone)]
pub struct AgentInfo {
    pub hostname: String,
    pub machine_guid: String,
    pub version: &'static str,
}

#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub auth: Arc<Auth>,
    pub agent: Arc<AgentInfo>,
    pub limits: BodyLimits,
    /// The Cloud-shaped space and its rooms.
    pub cloud: Arc<crate::cloud::Cloud>,
    /// Query slots (503 past them).
    pub admission: Arc<crate::admission::Admission>,
}
