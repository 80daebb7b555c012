//! One module per top-level subcommand.

pub mod agent;
pub mod bgp;
pub mod controller;
pub mod fabric;
pub mod lab;
pub mod resources;
