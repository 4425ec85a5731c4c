//! Loopback platform emulator (in progress).
