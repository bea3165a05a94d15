"""pytest-flmigrate: migrating an upstream vLLM model into vllm-plugin-FL is a pytest suite."""

__version__ = "0.1.0"
