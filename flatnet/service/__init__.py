"""Orchestration: the only layer that calls db, plan and linux together."""
