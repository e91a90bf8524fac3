"""iptables rules as data: a generic planner (PURE: no I/O, no CONF).

Modules, in dependency order:

* :mod:`~flatnet.plan.iptables.names`: chain names, the wrap prefix,
  shared chains, ownership (``validate_chain_name``, ``wrap``,
  ``is_owned_chain``);
* :mod:`~flatnet.plan.iptables.grammar`: the token check, ``parse_rule``
  and ``canonical_rule`` (the ``iptables-save`` spelling);
* :mod:`~flatnet.plan.iptables.model`: ``RuleSet``/``Table``/``Chain``/
  ``Anchor`` (what we want), ``SavedTable``/``parse_save`` (what is live);
* :mod:`~flatnet.plan.iptables.builder`: ``Skeleton`` (the fixed frame),
  ``NOVA_SKELETON`` (nova's IptablesManager frame) and
  ``RuleSetBuilder`` (``add_chain``, ``add``, ``build``);
* :mod:`~flatnet.plan.iptables.delta`: ``plan_table``/``plan_delta`` ->
  ``TablePlan`` (the ``iptables-restore --noflush`` payload);
* :mod:`~flatnet.plan.iptables.diff`: ``diff_ruleset``, the verify report;
* :mod:`~flatnet.plan.iptables.applied`: ``AppliedState``, the cache
  every backend plans from, over the backend's ``TableIO``.

Users build their rules with a ``RuleSetBuilder`` on a skeleton:
:mod:`flatnet.plan.host_rules` (the network host, ``NOVA_SKELETON``),
and the compute firewall (``NOVA_SKELETON.extended(...)`` plus a chain
per instance). The names below are the public API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flatnet.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from flatnet.plan.iptables.applied import AppliedState, TableIO
    from flatnet.plan.iptables.builder import (
        NOVA_SKELETON,
        RuleSetBuilder,
        Skeleton,
        SkeletonAnchor,
        SkeletonRule,
        wrapping_anchors,
    )
    from flatnet.plan.iptables.delta import (
        AnchorOp,
        TablePlan,
        plan_delta,
        plan_ruleset,
        plan_table,
    )
    from flatnet.plan.iptables.diff import diff_ruleset
    from flatnet.plan.iptables.grammar import (
        Option,
        ParsedRule,
        canonical_rule,
        parse_rule,
    )
    from flatnet.plan.iptables.model import (
        BUILTIN_CHAINS,
        TABLE_ORDER,
        Anchor,
        Chain,
        RuleSet,
        SavedTable,
        Table,
        empty_table,
        ordered,
        parse_save,
    )
    from flatnet.plan.iptables.names import (
        FILTER_TOP,
        MAX_CHAIN_NAME,
        MAX_WRAP_PREFIX,
        POSTROUTING_BOTTOM,
        SHARED_CHAINS,
        is_owned_chain,
        validate_chain_name,
        validate_prefix,
        wrap,
    )

#: public name -> the submodule defining it: a name is imported on first
#: use (PEP 562), so a user of one submodule (``names``) does not load
#: the planner (``flatnet-manage`` builds its settings with ``names``).
_HOME = {
    "AppliedState": "applied",
    "TableIO": "applied",
    "NOVA_SKELETON": "builder",
    "RuleSetBuilder": "builder",
    "Skeleton": "builder",
    "SkeletonAnchor": "builder",
    "SkeletonRule": "builder",
    "wrapping_anchors": "builder",
    "AnchorOp": "delta",
    "TablePlan": "delta",
    "plan_delta": "delta",
    "plan_ruleset": "delta",
    "plan_table": "delta",
    "diff_ruleset": "diff",
    "Option": "grammar",
    "ParsedRule": "grammar",
    "canonical_rule": "grammar",
    "parse_rule": "grammar",
    "BUILTIN_CHAINS": "model",
    "TABLE_ORDER": "model",
    "Anchor": "model",
    "Chain": "model",
    "RuleSet": "model",
    "SavedTable": "model",
    "Table": "model",
    "empty_table": "model",
    "ordered": "model",
    "parse_save": "model",
    "FILTER_TOP": "names",
    "MAX_CHAIN_NAME": "names",
    "MAX_WRAP_PREFIX": "names",
    "POSTROUTING_BOTTOM": "names",
    "SHARED_CHAINS": "names",
    "is_owned_chain": "names",
    "validate_chain_name": "names",
    "validate_prefix": "names",
    "wrap": "names",
}


__getattr__, __dir__ = lazy_exports(__name__, __name__, _HOME)


__all__ = [
    "BUILTIN_CHAINS", "FILTER_TOP", "MAX_CHAIN_NAME", "MAX_WRAP_PREFIX",
    "NOVA_SKELETON", "POSTROUTING_BOTTOM", "SHARED_CHAINS", "TABLE_ORDER",
    "Anchor", "AnchorOp", "AppliedState", "Chain", "Option", "ParsedRule",
    "RuleSet", "RuleSetBuilder", "SavedTable", "Skeleton", "SkeletonAnchor",
    "SkeletonRule", "Table", "TableIO", "TablePlan", "canonical_rule",
    "diff_ruleset", "empty_table", "is_owned_chain", "ordered", "parse_rule",
    "parse_save", "plan_delta", "plan_ruleset", "plan_table",
    "validate_chain_name", "validate_prefix", "wrap", "wrapping_anchors",
]  # fmt: skip
