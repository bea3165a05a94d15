"""The static index: vLLM/transformers source trees, their symbols, and name resolution across them."""
