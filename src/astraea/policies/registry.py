"""Name -> policy class. Adding a policy is one module plus one ``@register`` line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from astraea.core.policy import Policy

_REGISTRY: dict[str, type[Policy]] = {}
P = TypeVar("P", bound=type[Policy])


def register(cls: P) -> P:
    """Class decorator: make the policy available under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"policy name {cls.name!r} is taken by {_REGISTRY[cls.name].__name__}")
    _REGISTRY[cls.name] = cls
    return cls


def policy_names() -> list[str]:
    return sorted(_REGISTRY)


def make_policy(name: str, **params: Any) -> Policy:
    """Build a registered policy; an unknown name lists the known ones."""
    try:
        cls: Callable[..., Policy] = _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown policy {name!r}; choose from: {', '.join(policy_names())}"
        ) from None
    return cls(**params)
