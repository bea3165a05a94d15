"""Pinned- and upstream-env subprocesses: provisioned CPU envs, tiny checkpoint, servers."""
