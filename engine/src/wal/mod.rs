//! Write-ahead log (being written; see the durability issue).
