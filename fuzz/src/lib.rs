//! Fuzz target bodies, shared with the stable smoke test in the main workspace.
pub mod bodies;
