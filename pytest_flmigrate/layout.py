"""What every part of the tool agrees on about a plugin checkout and a model's name (stdlib only:
the plugin module reads it at load)."""

from __future__ import annotations

import re

#: The plugin's package (``vllm_fl``): relative imports in its files resolve against it.
PLUGIN_PACKAGE = "vllm_fl"
#: The file whose ``register_model()`` registers the migrated architectures (step 5).
REGISTRATION_FILE = f"{PLUGIN_PACKAGE}/__init__.py"
#: A model name: its upstream module stem (qwen3_5, AXK1); --model is checked against it.
MODEL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
