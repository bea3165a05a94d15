"""vllm_fl (mini): the entry points vLLM calls when it loads the plugin."""

import logging

logger = logging.getLogger(__name__)


def register():
    """Platform plugin entry point: this mini plugin adds no platform."""
    return None


def register_model():
    """General plugin entry point: register the plugin's model classes with vLLM."""
    from vllm import ModelRegistry  # noqa: F401
