"""The mapping file: loading, binding to headers, transforms, `check-mapping`, `init`."""
