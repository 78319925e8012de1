"""Results files: CSV, JSONL and XLSX writers, and reading results back."""
