"""Tiny models for the runtime judge: a config shrunk from the model's own, weights, a tokenizer, cached."""
