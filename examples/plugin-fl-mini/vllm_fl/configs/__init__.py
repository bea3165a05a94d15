"""HuggingFace config bridges for model types the pinned transformers lacks."""
