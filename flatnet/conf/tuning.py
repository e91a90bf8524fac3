"""flatnet-network tuning knobs (flatnet only; nova had none of them).

The defaults are the values the code was measured with
(doc/benchmarks.md, doc/dhcp.md); change them only with a reason.
"""

from __future__ import annotations

from oslo_config import cfg


def _dhcp_batch_opts() -> list[cfg.Opt]:
    """How new hosts are batched into hostsdir files."""
    return [
        cfg.IntOpt(
            "dhcp_compact_files",
            default=2000,
            min=0,
            help="flatnet: hostsdir files per network before they are "
            "compacted into the hosts file (one SIGHUP).",
        ),
        cfg.IntOpt(
            "dhcp_hostsdir_batch",
            default=16,
            min=1,
            help="flatnet: new hosts per hostsdir file while dnsmasq "
            "answers quickly.",
        ),
        cfg.IntOpt(
            "dhcp_hostsdir_batch_max",
            default=512,
            min=1,
            help="flatnet: new hosts per hostsdir file once a small "
            "batch was slow (at least dhcp_hostsdir_batch).",
        ),
        cfg.FloatOpt(
            "dhcp_slow_batch",
            default=0.2,
            min=0.0,
            max=60.0,
            help="flatnet: seconds after which a small batch counts as slow.",
        ),
    ]


def _dhcp_wait_opts() -> list[cfg.Opt]:
    """How long the DHCP reconciler waits, retries and checks."""
    return [
        cfg.FloatOpt(
            "dhcp_served_timeout",
            default=5.0,
            min=0.1,
            max=300.0,
            help="flatnet: seconds to wait for dnsmasq to answer after a "
            "write, reload or start.",
        ),
        cfg.IntOpt(
            "dhcp_release_attempts",
            default=3,
            min=1,
            max=100,
            help="flatnet: dhcp_release tries per deallocated address.",
        ),
        cfg.FloatOpt(
            "dhcp_release_interval",
            default=0.3,
            min=0.0,
            max=60.0,
            help="flatnet: seconds between dhcp_release tries.",
        ),
        cfg.FloatOpt(
            "dhcp_keeper_interval",
            default=0.05,
            min=0.01,
            max=10.0,
            help="flatnet: seconds between checks that each dnsmasq is "
            "alive; a dead one is restarted from the files on disk "
            "without waiting for the database.",
        ),
        cfg.FloatOpt(
            "dhcp_lease_refresh",
            default=1.0,
            min=0.1,
            max=3600.0,
            help="flatnet: seconds between refreshes of the in-memory "
            "lease list the keeper uses for the init snapshot of a "
            "restarted dnsmasq.",
        ),
    ]


def _dhcp_opts() -> list[cfg.Opt]:
    """How the DHCP reconciler batches, waits and retries."""
    return [*_dhcp_batch_opts(), *_dhcp_wait_opts()]


def _journal_opts() -> list[cfg.Opt]:
    """The lease journal the hook appends to."""
    return [
        cfg.IntOpt(
            "lease_journal_rotate_bytes",
            default=16 << 20,
            min=4096,
            help="flatnet: rotate a consumed lease journal at this size.",
        ),
        cfg.FloatOpt(
            "lease_journal_old_grace",
            default=5.0,
            min=0.0,
            max=3600.0,
            help="flatnet: seconds a rotated journal is kept for a hook "
            "still writing to it.",
        ),
        cfg.IntOpt(
            "lease_journal_max_bytes",
            default=1 << 20,
            min=4096,
            help="flatnet: most journal bytes ingested in one pass.",
        ),
    ]


def _loop_opts() -> list[cfg.Opt]:
    """Retries of the flatnet-network loop."""
    return [
        cfg.FloatOpt(
            "max_backoff",
            default=30.0,
            min=0.1,
            max=3600.0,
            help="flatnet: longest delay in seconds before a failed "
            "reconcile is retried (the delay doubles from 0.1 s).",
        ),
        cfg.FloatOpt(
            "trouble_remind_interval",
            default=60.0,
            min=1.0,
            max=86400.0,
            help="flatnet: seconds between reminders of an error that "
            "persists (each distinct error is logged once with its "
            "traceback, then reminded at this interval).",
        ),
    ]


def opts() -> list[cfg.Opt]:
    """Every tuning option, in sample-file order."""
    return [*_dhcp_opts(), *_journal_opts(), *_loop_opts()]
