//! Field validation helpers shared by every platform model.
