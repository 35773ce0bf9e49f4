"""What an operation accepts, read from the service method's own signature.

One reading serves both skins: the server builds its request models from it and the remote client
binds a call's arguments with it. Types are normalised to what JSON can carry: `Iterable[X]` and
`Sequence[X]` become lists, `Mapping[K, V]` a dict, and union members that only make sense in the
caller's process (paths, callables) are dropped.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from charter.api.operations import Operation

SERVICE_CLASSES: Mapping[str, str] = {
    "users": "charter.service.users:UserService",
    "tokens": "charter.service.tokens:TokenService",
    "audit": "charter.service.audit:AuditService",
    "checkpoints": "charter.service.checkpoints:CheckpointService",
    "policies": "charter.service.policies:PolicyService",
    "webhooks": "charter.service.webhooks:WebhookService",
    "models": "charter.service.models:ModelService",
    "datasets": "charter.service.datasets:DatasetService",
    "prompts": "charter.service.prompts:PromptService",
    "slots": "charter.service.slots:SlotService",
    "releases": "charter.service.releases:ReleaseService",
    "rollouts": "charter.service.rollouts:RolloutService",
    "provenance": "charter.service.provenance:ProvenanceService",
}

_PLACEHOLDER = re.compile(r"{(\w+)}")


@dataclass(frozen=True)
class Param:
    name: str
    annotation: Any  # normalised for JSON
    default: Any  # inspect.Parameter.empty when required
    keyword_only: bool

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty


@dataclass(frozen=True)
class Signature:
    operation: Operation
    path: tuple[Param, ...]
    other: tuple[Param, ...]  # query parameters (GET) or body fields
    positional: tuple[str, ...]  # parameter names in positional order, for binding calls
    returns: Any

    @property
    def all(self) -> tuple[Param, ...]:
        return self.path + self.other


def service_class(service: str) -> type:
    module, _, name = SERVICE_CLASSES[service].partition(":")
    cls = getattr(importlib.import_module(module), name)
    assert isinstance(cls, type)
    return cls


@cache
def signature_of(operation: Operation) -> Signature:
    method = getattr(service_class(operation.service), operation.method)
    hints = typing.get_type_hints(method)
    in_path = set(_PLACEHOLDER.findall(operation.path))
    path: list[Param] = []
    other: list[Param] = []
    positional: list[str] = []
    for parameter in list(inspect.signature(method).parameters.values())[1:]:
        if parameter.name in operation.exclude or parameter.kind in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        ):
            continue
        annotation = normalise(hints.get(parameter.name, Any))
        if annotation is None:  # only callables or paths: not something a request can carry
            continue
        param = Param(
            parameter.name,
            annotation,
            parameter.default,
            parameter.kind is inspect.Parameter.KEYWORD_ONLY,
        )
        if parameter.kind is not inspect.Parameter.KEYWORD_ONLY:
            positional.append(parameter.name)
        (path if parameter.name in in_path else other).append(param)
    missing = in_path - {p.name for p in path}
    if missing:
        raise TypeError(f"{operation.name}: path parameters {sorted(missing)} are not parameters")
    return Signature(operation, tuple(path), tuple(other), tuple(positional), hints.get("return", Any))


def normalise(annotation: Any) -> Any:
    """The JSON-carriable form of a parameter type; None if nothing of it can travel."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [normalise(arg) for arg in typing.get_args(annotation)]
        kept = [m for m in members if m is not None]
        if not kept:
            return None
        union: Any = kept[0]
        for member in kept[1:]:
            union = union | member
        return union
    if annotation in (Path, os.PathLike) or origin is os.PathLike:
        return None
    if origin is Callable or annotation is Callable:
        return None
    args = typing.get_args(annotation)
    if origin in (Iterable, Sequence, list, tuple) and args:
        item: Any = normalise(args[0])
        return list.__class_getitem__(item)
    if origin in (Mapping, dict) and len(args) == 2:
        key: Any = args[0]
        value: Any = normalise(args[1])
        return dict.__class_getitem__((key, value))
    return annotation
