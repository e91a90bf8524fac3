"""flatnet: FlatDHCP networking for single-host clouds.

Importing this package does nothing but define the version.
"""

__version__ = "0.1.0"
