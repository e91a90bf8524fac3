"""Pure planning: host state computed as data (no I/O, no CONF)."""
