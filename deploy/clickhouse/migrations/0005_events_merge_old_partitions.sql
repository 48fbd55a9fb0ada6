-- Reads pay per part they open (about 1.5 ms each on a 2-core machine): a 30-day page of one
-- workspace opens every part of two monthly partitions. ClickHouse's merge selector leaves
-- several parts in a partition; once every part of a partition is older than an hour (a closed
-- month, or a table no one writes to), merge the whole partition into one part. A partition
-- still being written to (the current month) is left to the merge selector, so this costs one
-- extra merge per month, not a rewrite per hour.
ALTER TABLE events MODIFY SETTING
    min_age_to_force_merge_seconds = 3600,
    min_age_to_force_merge_on_partition_only = 1;
