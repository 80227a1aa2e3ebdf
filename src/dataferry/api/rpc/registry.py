"""The RPC method registry: a capability registers named methods that call its
service functions; the XML-RPC and JSON-RPC doors both serve this one registry.

Kept free of any web framework so capabilities can register at start-up::

    def install(core: Core) -> None:
        core.rpc.register("records.get", lambda uuid: core.records.get(uuid).document())

A method is a plain callable; its signature decides which positional (XML-RPC,
JSON-RPC arrays) or named (JSON-RPC objects) parameters it accepts, and its
docstring (or ``help=``) is what ``system.methodHelp`` shows.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType, UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

from pydantic import ConfigDict, StrictInt, ValidationError, validate_call

from dataferry.errors import DataferryError, InvalidRequest

# Parameters are checked against the method's type hints before it runs, so a list
# where a name belongs is "invalid params", not an error deep in a service. Lax
# mode (42 is not a str), except that an ``int`` is strict (see _strict_ints).
_CHECKED = ConfigDict(arbitrary_types_allowed=True)
_CONTAINERS = (list, tuple, set, frozenset, dict)


def _strict_ints(hint: Any) -> Any:
    """``hint`` with each plain ``int`` in it (``int | None``, ``list[int]`` too) made
    strict: lax mode would read JSON's ``true`` as 1, ``"5"`` as 5 and 5.0 as 5, and a
    method would run with a number its caller never sent. JSON and XML-RPC both have
    integers; a caller sends one. ``Annotated`` hints already say what they want."""
    if hint is int:
        return StrictInt
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, UnionType):
        # built from a tuple of members, which ``X | Y`` cannot spell
        return Union[tuple(_strict_ints(a) for a in args)]  # noqa: UP007
    if origin in _CONTAINERS and args:
        return origin[tuple(_strict_ints(a) for a in args)]
    return hint


def _checked(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` with its parameters validated against its type hints, ints strict."""
    hints = {
        name: _strict_ints(hint)
        for name, hint in get_type_hints(func, include_extras=True).items()
        if name != "return"
    }
    sig = inspect.signature(func)

    def call(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    call.__name__ = getattr(func, "__name__", "method")
    call.__qualname__ = getattr(func, "__qualname__", call.__name__)
    call.__annotations__ = hints
    call.__signature__ = sig.replace(  # type: ignore[attr-defined]
        parameters=[
            p.replace(annotation=hints.get(p.name, p.annotation)) for p in sig.parameters.values()
        ],
        return_annotation=inspect.Signature.empty,
    )
    return validate_call(config=_CHECKED)(call)


class MethodNotFound(DataferryError):
    status_code = 404
    code = "method_not_found"


class InvalidParams(InvalidRequest):
    code = "invalid_params"


def _where(loc: tuple[int | str, ...], names: list[str]) -> str:
    """A validation error's place, positional indexes given as parameter names."""
    first = names[loc[0]] if loc and isinstance(loc[0], int) and loc[0] < len(names) else loc[0]
    return ".".join(str(part) for part in (first, *loc[1:])) if loc else "params"


@dataclass(frozen=True, slots=True)
class RpcMethod:
    name: str
    func: Callable[..., Any]
    help: str
    checked: Callable[..., Any]  # ``func`` with its parameters validated (see _checked)

    def signature(self) -> str:
        return f"{self.name}{inspect.signature(self.func)}"


class RpcRegistry:
    def __init__(self) -> None:
        self._methods: dict[str, RpcMethod] = {}

    def register(self, name: str, func: Callable[..., Any], help: str = "") -> None:
        if name in self._methods:
            raise ValueError(f"RPC method {name!r} is registered twice")
        if name.startswith("system.") or name.startswith("rpc."):
            raise ValueError(f"RPC method names under {name.split('.')[0]!r} are reserved")
        text = inspect.cleandoc(help or func.__doc__ or "")
        self._methods[name] = RpcMethod(name, func, text, _checked(func))

    def method(
        self, name: str, help: str = ""
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator form of :meth:`register`."""

        def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
            self.register(name, func, help)
            return func

        return wrap

    @property
    def methods(self) -> MappingProxyType[str, RpcMethod]:
        return MappingProxyType(self._methods)

    def names(self) -> list[str]:
        return sorted(self._methods)

    def get(self, name: str) -> RpcMethod:
        try:
            return self._methods[name]
        except KeyError:
            raise MethodNotFound(f"method {name!r} does not exist") from None

    def call(self, name: str, params: list[Any] | dict[str, Any] | None = None) -> Any:
        """Call ``name`` with positional (list) or named (dict) parameters."""
        method = self.get(name)
        args: list[Any] = list(params) if isinstance(params, (list, tuple)) else []
        kwargs: dict[str, Any] = dict(params) if isinstance(params, dict) else {}
        try:
            inspect.signature(method.func).bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidParams(f"{method.signature()}: {exc}") from None
        try:
            return method.checked(*args, **kwargs)
        except ValidationError as exc:
            names = list(inspect.signature(method.func).parameters)
            problems = "; ".join(
                f"{_where(e['loc'], names)}: {e['msg']}" for e in exc.errors(include_url=False)
            )
            raise InvalidParams(f"{method.signature()}: {problems}") from None
