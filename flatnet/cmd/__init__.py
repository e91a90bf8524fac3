"""Command-line entry points (config parsing and wiring live here)."""
