//! Retry policy: exponential backoff with jitter, bounded attempts and a total deadline.
