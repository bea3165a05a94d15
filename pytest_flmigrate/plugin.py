"""pytest hooks of pytest-flmigrate."""
