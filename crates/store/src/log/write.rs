//! The sequencer's inserts into the log's tables (owned by the sequencer's author).
