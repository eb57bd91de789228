"""Who may do what on which repositories: the rules under `appliance.access`.

    appliance:
      access:
        groups: {team-a: [alice, bob]}
        rules:
          - repositories: ["team-a/*"]     # globs; `*` also matches `/`
            groups: [team-a]
            actions: [pull]
          - repositories: ["*"]
            users: [ci]
            actions: ["*"]                 # pull, push and delete
        anonymous: ["public/*"]            # pull without credentials
        catalog: [ci]                      # may list /v2/_catalog ("*": every user)

Without an `access` section every authenticated user may do everything (Distribution's way).
With one, what no rule grants is refused. The same rules serve the built-in token server and
plain htpasswd auth.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from appliance.config.model import AccessConfig

from .scope import Scope

__all__ = ["ALL_ACTIONS", "AccessRule", "AccessRules", "rules_from_config"]

ALL_ACTIONS = frozenset({"pull", "push", "delete"})


@dataclass(frozen=True)
class AccessRule:
    repositories: tuple[str, ...]
    actions: frozenset[str]
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccessRules:
    """`enabled` false means no `appliance.access` section: every user may do everything."""

    enabled: bool = False
    rules: tuple[AccessRule, ...] = ()
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    anonymous: tuple[str, ...] = ()
    catalog: tuple[str, ...] = ()

    def actions(self, user: str | None, repository: str) -> frozenset[str]:
        """The actions `user` (None: anonymous) may take on `repository`."""
        if user is None:
            return frozenset({"pull"}) if _matches(self.anonymous, repository) else frozenset()
        if not self.enabled:
            return ALL_ACTIONS
        granted: set[str] = set()
        for rule in self.rules:
            if self._applies(rule, user) and _matches(rule.repositories, repository):
                granted |= ALL_ACTIONS if "*" in rule.actions else rule.actions
        return frozenset(granted)

    def allows(self, user: str | None, scope: Scope) -> bool:
        return set(scope.actions) <= self.granted(user, scope)

    def granted(self, user: str | None, scope: Scope) -> set[str]:
        """The subset of `scope`'s actions that `user` may take (`*` expands for the catalog)."""
        if scope.type == "registry" and scope.name == "catalog":
            if user is None:
                return set()
            ok = not self.enabled or "*" in self.catalog or user in self.catalog
            return set(scope.actions) if ok else set()
        if scope.type != "repository":
            return set()
        allowed = self.actions(user, scope.name)
        wanted = set(scope.actions)
        if "*" in wanted and allowed >= ALL_ACTIONS:
            return wanted
        return wanted & allowed

    def _applies(self, rule: AccessRule, user: str) -> bool:
        if "*" in rule.users or user in rule.users:
            return True
        return any(user in self.groups.get(group, ()) for group in rule.groups)


def _matches(globs: Iterable[str], repository: str) -> bool:
    return any(fnmatchcase(repository, glob) for glob in globs)


def rules_from_config(config: AccessConfig | None) -> AccessRules:
    """`appliance.access` as rules; None (no section) lets every user do everything."""
    if config is None:
        return AccessRules()
    return AccessRules(
        enabled=True,
        rules=tuple(AccessRule(r.repositories, frozenset(r.actions), r.users, r.groups)
                    for r in config.rules),
        groups=dict(config.groups),
        anonymous=config.anonymous,
        catalog=config.catalog,
    )
