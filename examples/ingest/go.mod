module auditlog.example/ingest

go 1.19
