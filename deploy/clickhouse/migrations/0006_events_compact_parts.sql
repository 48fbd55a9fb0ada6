-- Parts under 128 MiB (uncompressed) are written in the compact format: one data file for all
-- columns instead of a .bin and a marks file per column (about 80 files for this table). The
-- consumer inserts parts of about 8 MiB and ClickHouse merges them in steps; creating the files
-- of every wide part was about a tenth of ClickHouse's CPU while ingesting (ext4 inode
-- allocation, see BENCHMARKS.md). Bigger parts (a merged month) are still wide, which is what
-- reads of a few columns over many rows want. ClickHouse's default is 10 MiB.
ALTER TABLE events MODIFY SETTING min_bytes_for_wide_part = 134217728;
