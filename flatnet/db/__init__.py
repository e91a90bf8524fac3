"""Database layer: tables, migrations and the one query API (db.api)."""
