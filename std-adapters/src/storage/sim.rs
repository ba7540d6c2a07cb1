//! An in-memory [`Storage`](super::Storage) that simulates power loss (being written).
