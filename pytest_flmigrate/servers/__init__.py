"""The processes a run starts and the vLLM servers among them: process groups, health, logs, GPUs,
the CPU engine arguments."""
