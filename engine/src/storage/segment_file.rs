//! Sealed segments on disk (being written; see the durability issue).
