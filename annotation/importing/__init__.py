"""Reading sample files (JSONL, JSON, CSV, Parquet, gzip) through per-source adapters."""
