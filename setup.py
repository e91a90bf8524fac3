"""flatnet: a FlatDHCP network manager in the spirit of nova-network."""

from setuptools import find_packages, setup

setup(
    name="flatnet",
    version="0.1.0",
    description="FlatDHCP network manager compatible with nova-network",
    python_requires=">=3.11",
    packages=find_packages(include=["flatnet", "flatnet.*"]),
    package_data={
        "flatnet.plan": ["lease_hook.lua"],
        "flatnet.db": [
            "alembic.ini",
            "migrations/*.py",
            "migrations/versions/*.py",
        ]
    },
    install_requires=[
        "oslo.config>=9.0",
        "netaddr>=0.10",
        "SQLAlchemy>=2.0,<3",
        "alembic>=1.12",
        "pyroute2>=0.7.3",
        "python-iptables>=1.0",
    ],
    extras_require={
        # Database drivers: [database] connection = postgresql+psycopg://
        # or mysql+pymysql:// (MySQL and MariaDB).
        "postgresql": ["psycopg[binary]>=3.1"],
        "libvirt": ["libvirt-python>=9.0"],
        "mysql": ["PyMySQL>=1.0"],
        # a monkey-patched caller of the compute-driver API
        # (flatnet.cmd.eventlet_support)
        "eventlet": ["eventlet>=0.33"],
        "test": [
            "pytest>=8",
            "hypothesis>=6",
            "pytest-timeout>=2",
            "ruff==0.17.6",
            "mypy==2.4.1",
            "psycopg[binary]>=3.1",
            "libvirt-python>=9.0",
            "eventlet>=0.33",
        ],
    },
    entry_points={
        "console_scripts": [
            "flatnet-manage = flatnet.cmd.manage:main",
            "flatnet-network = flatnet.cmd.network:main",
            "flatnet-metadata = flatnet.cmd.metadata:main",
            "flatnet-dhcpbridge = flatnet.cmd.dhcpbridge:main",
        ],
        "oslo.config.opts": [
            "flatnet = flatnet.conf.opts:list_opts",
        ],
    },
)
