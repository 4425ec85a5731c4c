//! In-memory store (in progress).
/// In-memory store.
#[derive(Debug, Default)]
pub struct MemoryStore;
