"""FakeIpset: the real IpsetBackend's planning over an in-memory kernel.

Only the two calls that reach the ``ipset`` command are replaced
(``save_text`` and ``restore``); the kernel side follows ipset(8) as
the contract suite checks on the real thing: lines run in order and the
first failing one stops the rest (earlier ones stay applied), ``-exist``
ignores re-adding or re-creating the same thing, ``swap`` needs sets of
the same type, a set a rule references (``hold``) cannot be destroyed.
``sent`` keeps every payload.
"""

from __future__ import annotations

from flatnet import exception
from flatnet.linux.ipset import IpsetBackend
from flatnet.plan.ipset import IpsetPlan


class _Set:
    def __init__(self, kind: str, family: str) -> None:
        self.kind, self.family = kind, family
        self.members: set[str] = set()


class FakeIpset(IpsetBackend):
    """An IpsetBackend whose kernel is a dict."""

    def __init__(self, prefix: str) -> None:
        super().__init__(prefix)
        self.sets: dict[str, _Set] = {}
        self.held: set[str] = set()
        self.sent: list[tuple[str, ...]] = []
        self.saves = 0

    def hold(self, name: str) -> None:
        """A rule now references ``name`` (as ``-m set`` would)."""
        self.held.add(name)

    def release(self, name: str) -> None:
        self.held.discard(name)

    def save_text(self) -> str:
        self.saves += 1
        out = []
        for name, found in sorted(self.sets.items()):
            out.append(f"create {name} {found.kind} family {found.family}")
            out += [f"add {name} {m}" for m in sorted(found.members)]
        return "\n".join(out) + "\n"

    def restore(self, plan: IpsetPlan) -> None:
        self.sent.append(plan.lines)
        for number, line in enumerate(plan.lines, 1):
            problem = self._line(line.split())
            if problem:
                raise exception.IpsetError(
                    name=plan.set_of_line(number),
                    reason=f"{line!r} failed: {problem}",
                )

    def _line(self, parts: list[str]) -> str | None:
        op, name = parts[0], parts[1]
        found = self.sets.get(name)
        if op == "create":
            opts = dict(zip(parts[3::2], parts[4::2], strict=False))
            family = opts.get("family", "inet")
            if found and (found.kind, found.family) != (parts[2], family):
                return "Set cannot be created: set with the same name exists"
            self.sets.setdefault(name, _Set(parts[2], family))
            return None
        if found is None:
            return "The set with the given name does not exist"
        if op == "add":
            found.members.add(parts[2])
        elif op == "del":
            found.members.discard(parts[2])
        elif op == "destroy":
            if name in self.held:
                return "Set cannot be destroyed: it is in use by a kernel"
            del self.sets[name]
        elif op == "swap":
            return self._swap(name, parts[2])
        return None

    def _swap(self, a: str, b: str) -> str | None:
        if b not in self.sets:
            return "The set with the given name does not exist"
        if self.sets[a].kind != self.sets[b].kind:
            return "The sets cannot be swapped: their type does not match"
        self.sets[a], self.sets[b] = self.sets[b], self.sets[a]
        return None
