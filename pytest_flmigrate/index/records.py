"""The records a tree's index holds: a module (:class:`ModuleInfo`), its classes and functions
(:class:`ClassInfo`, :class:`FunctionInfo`, :class:`Param`, :class:`FieldInfo`), and a tree's
modules (:class:`TreeIndex`), in memory or opened from the cache. Extracted from source by
:mod:`pytest_flmigrate.index.symbols`, built and cached by :mod:`pytest_flmigrate.index.build`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pytest_flmigrate.index.store import IndexStore

#: What a module's record holds; records of another format are never read (see build.cache_path).
INDEX_FORMAT = 4

# Parameter kinds, spelled like ``inspect.Parameter`` kinds.
POSITIONAL_ONLY = "positional_only"
POSITIONAL_OR_KEYWORD = "positional_or_keyword"
VAR_POSITIONAL = "var_positional"
KEYWORD_ONLY = "keyword_only"
VAR_KEYWORD = "var_keyword"


@dataclass
class Param:
    name: str
    kind: str
    has_default: bool = False
    default: str | None = None  # source text of the default, shortened
    annotation: str | None = None


@dataclass
class FunctionInfo:
    """A function or method: parameters in order, decorators (last dotted part), lines."""

    name: str
    line: int
    end: int
    params: list[Param] = field(default_factory=list)
    decorators: list[str] = field(default_factory=list)
    is_async: bool = False
    self_reads: list[str] = field(default_factory=list)  # ``self.X`` loads in the body

    @property
    def kind(self) -> str:
        """``staticmethod``, ``classmethod``, ``property`` or ``function`` (plain def / method)."""
        for decorator in self.decorators:
            if decorator in ("staticmethod", "classmethod"):
                return decorator
            if decorator in ("property", "cached_property") or decorator.endswith(".setter"):
                return "property"
        return "function"

    def bound_params(self, bound: bool) -> list[Param]:
        """The parameters a caller passes: without ``self``/``cls`` when called bound."""
        if bound and self.params and self.params[0].kind in (POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD):
            return self.params[1:]
        return list(self.params)

    def signature(self, bound: bool = False) -> str:
        """``(a, b=1, *args, c, **kwargs)``: readable, for messages."""
        parts: list[str] = []
        params = self.bound_params(bound)
        star_done = False
        for index, param in enumerate(params):
            if param.kind == KEYWORD_ONLY and not star_done:
                parts.append("*")
                star_done = True
            if param.kind == VAR_POSITIONAL:
                parts.append(f"*{param.name}")
                star_done = True
            elif param.kind == VAR_KEYWORD:
                parts.append(f"**{param.name}")
            else:
                parts.append(f"{param.name}={param.default}" if param.has_default else param.name)
            if param.kind == POSITIONAL_ONLY and (
                index + 1 == len(params) or params[index + 1].kind != POSITIONAL_ONLY
            ):
                parts.append("/")
        return f"({', '.join(parts)})"

    def check_call(
        self,
        positional: int,
        keywords: list[str],
        *,
        bound: bool = False,
        star_args: bool = False,
        star_kwargs: bool = False,
    ) -> list[str]:
        """What is wrong with calling this with ``positional`` arguments and ``keywords``.

        ``bound``: the first parameter (self/cls) is supplied by the call. ``star_args`` /
        ``star_kwargs``: the call spreads ``*x`` / ``**x`` (then counts are not known and only
        what is certain is reported). Returns problems as short phrases; empty when it fits.
        """
        params = self.bound_params(bound)
        positional_params = [p for p in params if p.kind in (POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD)]
        has_varargs = any(p.kind == VAR_POSITIONAL for p in params)
        has_varkw = any(p.kind == VAR_KEYWORD for p in params)
        by_keyword = {p.name: p for p in params if p.kind in (POSITIONAL_OR_KEYWORD, KEYWORD_ONLY)}
        problems: list[str] = []
        if positional > len(positional_params) and not has_varargs:
            problems.append(f"takes {len(positional_params)} positional argument(s) but {positional} given")
        filled = {p.name for p in positional_params[:positional]}
        for keyword in keywords:
            if keyword not in by_keyword:
                if not has_varkw:
                    problems.append(f"unexpected keyword argument '{keyword}'")
            elif keyword in filled:
                problems.append(f"multiple values for argument '{keyword}'")
            filled.add(keyword)
        if not star_args and not star_kwargs:
            missing = [
                p.name
                for p in params
                if p.kind in (POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD, KEYWORD_ONLY)
                and not p.has_default
                and p.name not in filled
            ]
            if missing:
                problems.append("missing required argument(s) " + ", ".join(f"'{m}'" for m in missing))
        return problems


@dataclass
class FieldInfo:
    """A dataclass field (or an annotated class attribute of a config record)."""

    name: str
    has_default: bool
    annotation: str | None = None
    line: int = 0
    init: bool = True  # False for ``field(init=False)``
    default: str | None = None  # source text of the default, shortened


@dataclass
class ClassInfo:
    """A class: bases as references, methods, class attributes, instance attributes, fields.

    ``bases`` are references ``"module:dotted.name"`` as the defining module binds them
    (``"torch.nn:Module"``, ``"vllm.model_executor.models.qwen3_next:Qwen3NextForCausalLM"``),
    or the bare expression text when it cannot be tied to an import (``"Generic[T]"``).
    """

    name: str
    line: int
    end: int
    bases: list[str] = field(default_factory=list)
    decorators: list[str] = field(default_factory=list)
    methods: dict[str, FunctionInfo] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)  # class body name -> kind
    instance_attributes: dict[str, list[str]] = field(default_factory=dict)  # self.X -> methods
    fields: list[FieldInfo] = field(default_factory=list)
    is_dataclass: bool = False
    metaclass: str | None = None

    def has_member(self, name: str) -> bool:
        """Defined by the class itself: method, class attribute, field or ``self.X`` assignment."""
        return (
            name in self.methods
            or name in self.attributes
            or name in self.instance_attributes
            or any(f.name == name for f in self.fields)
        )


@dataclass
class ModuleInfo:
    """One module: names defined at top level (name -> kind) and imported (name -> origin)."""

    path: str
    is_package: bool
    defines: dict[str, str] = field(default_factory=dict)
    imports: dict[str, str] = field(default_factory=dict)
    all: list[str] | None = None
    stars: list[str] = field(default_factory=list)
    lazy: dict[str, str] = field(default_factory=dict)
    lazy_module: bool = False
    dynamic_getattr: bool = False  # a module __getattr__ whose names could not all be listed
    type_checking: list[str] = field(default_factory=list)
    classes: dict[str, ClassInfo] = field(default_factory=dict)
    functions: dict[str, FunctionInfo] = field(default_factory=dict)
    spans: dict[str, list[int]] = field(default_factory=dict)
    import_lines: dict[str, int] = field(default_factory=dict)
    parse_error: str | None = None

    @property
    def names(self) -> set[str]:
        """Every name ``from this import name`` may find directly (without following stars)."""
        bound = {name for name, kind in self.defines.items() if kind != "annotation"}
        return bound | set(self.imports) | set(self.lazy)

    def public_names(self) -> list[str]:
        """What ``from this import *`` binds (before following this module's own stars)."""
        if self.all is not None:
            return list(self.all)
        return sorted(name for name in self.names if not name.startswith("_"))

    @classmethod
    def from_dict(cls, data: dict) -> ModuleInfo:
        data = dict(data)
        data["classes"] = {name: _class_from_dict(c) for name, c in data.get("classes", {}).items()}
        data["functions"] = {name: _function_from_dict(f) for name, f in data.get("functions", {}).items()}
        return cls(**data)


def _function_from_dict(data: dict) -> FunctionInfo:
    data = dict(data)
    data["params"] = [Param(**p) for p in data.get("params", [])]
    return FunctionInfo(**data)


def _class_from_dict(data: dict) -> ClassInfo:
    data = dict(data)
    data["methods"] = {name: _function_from_dict(m) for name, m in data.get("methods", {}).items()}
    data["fields"] = [FieldInfo(**f) for f in data.get("fields", [])]
    return ClassInfo(**data)


@dataclass
class TreeIndex:
    """The modules of a tree's package. ``modules`` is a plain dict for an index built in memory,
    or read lazily from the cache (:mod:`pytest_flmigrate.index.store`), whose tables then answer
    the questions below without decoding every module. ``digest``: a hash of the sources."""

    root: Path
    package: str
    version: str
    modules: Mapping[str, ModuleInfo]
    digest: str = ""
    store: IndexStore | None = None

    def has_module(self, name: str) -> bool:
        return name in self.modules

    def definitions(self, name: str) -> list[tuple[str, str, bool]]:
        """(module, kind, type_checking) of every module binding ``name`` at runtime or under
        ``TYPE_CHECKING`` (class, def, assignment; not a bare annotation)."""
        if self.store is not None:
            return self.store.definitions(name)
        return [
            (module, info.defines[name], name in info.type_checking)
            for module, info in self.modules.items()
            if info.defines.get(name, "annotation") != "annotation"
        ]

    def defining_modules(self, name: str, under: str = "") -> list[str]:
        """Modules under the dotted prefix ``under`` that define ``name`` (class, def, assign)."""
        return sorted(module for module, _, _ in self.definitions(name) if module.startswith(under))

    def classes_with_member(self, name: str) -> list[tuple[str, str]]:
        """(module, class) of every class defining the member ``name`` itself."""
        if self.store is not None:
            return self.store.classes_with_member(name)
        return [
            (module, cls.name)
            for module, info in self.modules.items()
            for cls in info.classes.values()
            if cls.has_member(name)
        ]

    def member_names(self) -> frozenset[str]:
        """Every member name (method, class attribute, ``self.X``, field) of every class."""
        if self.store is not None:
            return self.store.member_names()
        return frozenset(
            name for info in self.modules.values() for cls in info.classes.values() for name in class_member_names(cls)
        )

    def paths(self) -> dict[str, str]:
        """Module -> file path relative to ``root``."""
        if self.store is not None:
            return dict(self.store.paths)
        return {module: info.path for module, info in self.modules.items()}


def class_member_names(cls: ClassInfo) -> set[str]:
    return {*cls.methods, *cls.attributes, *cls.instance_attributes, *(f.name for f in cls.fields)}
