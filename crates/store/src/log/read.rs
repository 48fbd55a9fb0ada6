//! Reads of the log's tables for the API, the export and the sequencer's restart (owned by
//! the API's author; the sequencer may add its restart reads at the end of this file).
