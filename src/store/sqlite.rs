//! SQLite store (in progress).
/// SQLite store.
#[derive(Debug)]
pub struct SqliteStore;
