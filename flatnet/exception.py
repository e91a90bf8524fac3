"""The flatnet exception tree.

Every error flatnet raises on purpose derives from :class:`FlatnetError`.
Messages are built from ``msg_fmt % kwargs`` and the kwargs are kept on
``.kwargs`` (os-vif style), so a caller can report the problem on one line
and tests can assert on the structured fields.

::

    FlatnetError(Exception)
    +-- InvalidInput(FlatnetError, ValueError)     bad operator/API input
    |   +-- InvalidCidr
    |   +-- InvalidMacAddress
    |   +-- InvalidHostname
    |   +-- InvalidIpAddress
    |   +-- AddressOutOfRange
    |   +-- InvalidDeviceName                      bad bridge/interface name
    |   +-- InvalidIptablesRule                    bad chain/rule/prefix text
    +-- ConfigError(FlatnetError, ValueError)      bad options, at startup
    |   +-- ForeignDatabase                        nova's database, refused
    +-- NotFound(FlatnetError, LookupError)
    |   +-- NetworkNotFound
    |   +-- InstanceNotFound
    |   +-- FixedIpNotFound
    |   +-- FloatingIpNotFound
    |   +-- FloatingIpPoolNotFound
    +-- Conflict(FlatnetError)
    |   +-- CidrConflict
    |   +-- DuplicateNetwork
    |   +-- DuplicateInstance
    |   +-- MacAddressInUse
    |   +-- FixedIpAlreadyInUse
    |   +-- FloatingIpAlreadyExists
    |   +-- FloatingIpAssociated
    |   +-- FloatingIpNotAssociated
    |   +-- NetworkInUse
    +-- AllocationError
    |   +-- NoMoreFixedIps
    |   +-- NoMoreFloatingIps
    |   +-- MacAddressGenerationFailed
    +-- NotReady                                    wait_ready timed out
    +-- DatabaseError                               the database failed
    |   +-- DatabaseLocked                          lock not granted in time
    |   +-- DatabaseNotInitialised                  no file / no schema
    |   +-- DatabaseFull                            no space left
    |   +-- DatabaseUnavailable                     cannot open / connect
    +-- HostNetworkError                            executor failures
        +-- DeviceNotFound
        +-- BridgeSetupError
        +-- DnsmasqError
        +-- DhcpReleaseError
        +-- FirewallApplyError
        +-- NWFilterError
        +-- IpsetError                              names the set
"""

from __future__ import annotations

from typing import Any, ClassVar


class FlatnetError(Exception):
    """Base class; ``msg_fmt`` is formatted with the keyword arguments."""

    msg_fmt: ClassVar[str] = "An unknown flatnet error occurred"

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        self.kwargs = kwargs
        if message is None:
            try:
                message = self.msg_fmt % kwargs
            except (KeyError, TypeError, ValueError):
                message = f"{self.msg_fmt} {kwargs!r}"
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return self.message


# --- input --------------------------------------------------------------
class InvalidInput(FlatnetError, ValueError):
    msg_fmt = "Invalid input: %(reason)s"


class InvalidCidr(InvalidInput):
    msg_fmt = "Invalid CIDR %(cidr)r: %(reason)s"


class InvalidMacAddress(InvalidInput):
    msg_fmt = "Invalid MAC address %(mac)r: %(reason)s"


class InvalidHostname(InvalidInput):
    msg_fmt = "Invalid hostname %(hostname)r: %(reason)s"


class InvalidIpAddress(InvalidInput):
    msg_fmt = "Invalid IP address %(address)r: %(reason)s"


class AddressOutOfRange(InvalidInput):
    msg_fmt = "Address %(address)s is not in network %(network)s"


class ConfigError(FlatnetError, ValueError):
    msg_fmt = "Configuration error: %(reason)s"


# --- lookups ------------------------------------------------------------
class NotFound(FlatnetError, LookupError):
    msg_fmt = "Resource could not be found: %(what)s"


class NetworkNotFound(NotFound):
    msg_fmt = "Network %(network)s could not be found"


class InstanceNotFound(NotFound):
    msg_fmt = "Instance %(instance)s could not be found"


class FixedIpNotFound(NotFound):
    msg_fmt = "Fixed IP %(address)s could not be found"


class FloatingIpNotFound(NotFound):
    msg_fmt = "%(address)s is not in any floating IP pool"


class FloatingIpPoolNotFound(NotFound):
    msg_fmt = "Floating IP pool %(pool)s could not be found"


# --- conflicts ----------------------------------------------------------
class Conflict(FlatnetError):
    msg_fmt = "Conflict: %(reason)s"


class CidrConflict(Conflict):
    msg_fmt = "CIDR %(cidr)s overlaps existing network %(other)s"


class DuplicateNetwork(Conflict):
    msg_fmt = "A network with %(field)s %(value)r already exists"


class DuplicateInstance(Conflict):
    msg_fmt = "An instance named %(name)r already exists"


class MacAddressInUse(Conflict):
    msg_fmt = "MAC address %(mac)s is already in use"


class FixedIpAlreadyInUse(Conflict):
    msg_fmt = "Fixed IP %(address)s is already in use"


class FloatingIpAlreadyExists(Conflict):
    msg_fmt = "Floating IP %(address)s already exists"


class FloatingIpAssociated(Conflict):
    msg_fmt = "Floating IP %(address)s is associated with %(instance)s"


class FloatingIpNotAssociated(Conflict):
    msg_fmt = "Floating IP %(address)s is not associated"


class NetworkInUse(Conflict):
    msg_fmt = "Network %(network)s still has allocated fixed IPs"


# --- allocation ---------------------------------------------------------
class AllocationError(FlatnetError):
    msg_fmt = "Allocation failed: %(reason)s"


class NoMoreFixedIps(AllocationError):
    msg_fmt = "No fixed IP addresses available for network %(network)s"


class NoMoreFloatingIps(AllocationError):
    msg_fmt = "No more floating IPs in pool %(pool)s"


class MacAddressGenerationFailed(AllocationError):
    msg_fmt = (
        "Could not generate a unique MAC address after %(attempts)d tries"
    )


class NotReady(FlatnetError):
    msg_fmt = "%(what)s was not ready after %(timeout).1f s"


# --- host executors -----------------------------------------------------
class HostNetworkError(FlatnetError):
    msg_fmt = "Host network operation failed: %(reason)s"


class DeviceNotFound(HostNetworkError):
    msg_fmt = "Device %(device)s does not exist"


class BridgeSetupError(HostNetworkError):
    msg_fmt = "Bridge setup failed on %(device)s: %(reason)s"


class DnsmasqError(HostNetworkError):
    msg_fmt = "dnsmasq for %(bridge)s: %(reason)s"


class DhcpReleaseError(HostNetworkError):
    msg_fmt = (
        "Releasing the lease of %(address)s on %(bridge)s failed: %(reason)s"
    )


class FirewallApplyError(HostNetworkError):
    msg_fmt = "Applying the %(table)s table failed: %(reason)s"


class NWFilterError(HostNetworkError):
    msg_fmt = "nwfilter %(name)s: %(reason)s"


class IpsetError(HostNetworkError):
    msg_fmt = "ipset %(name)s: %(reason)s"


class FixedIpReserved(Conflict):
    msg_fmt = "Fixed IP %(address)s is reserved"


class InvalidDeviceName(InvalidInput):
    msg_fmt = "Invalid network device name %(name)r: %(reason)s"


# --- appended: iptables rule engine ---------------------------------------
class InvalidIptablesRule(InvalidInput):
    msg_fmt = "Invalid iptables rule %(rule)r: %(reason)s"


# --- appended: the database as an external system -------------------------
class ForeignDatabase(ConfigError):
    msg_fmt = (
        "the database %(database)s holds nova's schema (table %(table)s); "
        "flatnet must never write there: give it a database of its own"
    )


class DatabaseError(FlatnetError):
    """The database failed (not bad input): flatnet-manage exits 1."""

    msg_fmt = "database %(database)s: %(reason)s"


class DatabaseLocked(DatabaseError):
    msg_fmt = (
        "database %(database)s is locked: another process held its "
        "write lock for more than %(seconds)s s"
    )


class DatabaseNotInitialised(DatabaseError):
    msg_fmt = (
        "database %(database)s has no flatnet schema (%(reason)s): run "
        "'flatnet-manage db sync'"
    )


class DatabaseFull(DatabaseError):
    msg_fmt = "no space left for database %(database)s on %(path)s"


class DatabaseUnavailable(DatabaseError):
    msg_fmt = "cannot use database %(database)s: %(reason)s"
