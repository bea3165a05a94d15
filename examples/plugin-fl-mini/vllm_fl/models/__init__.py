"""Model implementations migrated from upstream vLLM."""
