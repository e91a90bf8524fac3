"""Migration tooling: import a nova-network database, export to Neutron,
and report what guests would see change.

``nova_plan``, ``neutron_export`` and ``report`` are PURE (data in, data
out); ``nova_import`` and ``writer`` are the thin edges that read and
write (the database through :mod:`flatnet.db`, files through
:mod:`flatnet.linux.files`).
"""
