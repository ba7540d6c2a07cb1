//! Loom models of ringledger's concurrent algorithms.
//!
//! The models are the integration tests in `tests/`; each is small and named after the one
//! property it checks. They compile to nothing unless built with `--cfg loom`:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p ringledger-loom-tests --release
//! ```
