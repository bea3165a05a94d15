"""The compatibility patch catalog (P1, P2, ...): one module per patch, applied in id order."""
