"""The symbol index and name resolution on small trees written here."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pytest_flmigrate.index import build, file_imports, records, resolve
from pytest_flmigrate.index.sources import SourceTree
from tests.fixtures.trees import write

PKG = {
    "pkg/__init__.py": """
        import typing
        from .core import Base as Base
        MODULE_ATTRS = {"Lazy": ".lazy_mod:LazyThing", "Other": "pkg.core:helper"}
        if typing.TYPE_CHECKING:
            from .lazy_mod import LazyThing as Lazy
        else:
            def __getattr__(name):
                if name in MODULE_ATTRS:
                    mod, attr = MODULE_ATTRS[name].split(":")
                    return getattr(__import__(mod), attr)
                raise AttributeError(name)
        __all__ = ["Base", "Lazy"]
    """,
    "pkg/core.py": """
        from __future__ import annotations
        from dataclasses import dataclass, field
        from typing import TYPE_CHECKING
        import torch.nn as nn
        if TYPE_CHECKING:
            from pkg.lazy_mod import OnlyTyped
        __all__ = ["Base", "helper", "Record"]
        class Base(nn.Module):
            flag = True
            def __init__(self, a, b=1, *args, c, d=None, **kwargs):
                super().__init__()
                self.a = a
                self.w, self.v = b, c
            def forward(self, x, /, y=2):
                return self.a + self.missing
            @classmethod
            def make(cls, n: int = 0) -> "Base":
                return cls(n, c=1)
            @staticmethod
            def tool(z):
                return z
            @property
            def size(self):
                return self.a
        def helper(x, *, k=3):
            return x
        @dataclass
        class Record:
            name: str
            count: int = 0
            tags: list = field(default_factory=list)
            hidden: int = field(default=0, init=False)
        Base.extra = 1
        _private = 1
    """,
    "pkg/lazy_mod.py": """
        class LazyThing: ...
        class OnlyTyped: ...
    """,
    "pkg/stars.py": """
        from pkg.core import *
        from pkg.sub import *
    """,
    "pkg/sub/__init__.py": """
        from .leaf import leaf_fn
        def visible(): ...
        def _hidden(): ...
    """,
    "pkg/sub/leaf.py": """
        from ..core import Base
        def leaf_fn(): ...
        class Child(Base):
            def __init__(self):
                nn_init = 1
    """,
    "pkg/facade.py": """
        from typing import Any
        _EXPORTS: dict[str, str] = {"Thing": "pkg.lazy_mod:LazyThing", "whole": "pkg.core"}
        __all__ = ["Wrapper"]
        Wrapper: Any
        def __getattr__(name):
            spec = _EXPORTS.get(name)
            if spec is None:
                if name in __all__:
                    return object()
                raise AttributeError(name)
    """,
    "pkg/moved.py": """
        import warnings
        def __getattr__(name: str):
            if name == "OldName":
                from pkg.lazy_mod import LazyThing
                return LazyThing
            raise AttributeError(name)
    """,
}


@pytest.fixture
def index(tmp_path: Path) -> records.TreeIndex:
    root = write(tmp_path / "tree", PKG)
    return build.index_directory(root, "pkg", "1.0")


@pytest.fixture
def resolver(index) -> resolve.Resolver:
    return resolve.Resolver([index])


def test_module_info_definitions_imports_all_stars(index):
    core = index.modules["pkg.core"]
    assert core.defines["Base"] == "class"  # ``Base.extra = 1`` does not make it an assignment
    assert core.defines["helper"] == "function"
    assert core.all == ["Base", "helper", "Record"]
    assert core.imports["nn"] == "torch.nn"
    assert core.type_checking == ["OnlyTyped"]
    assert index.modules["pkg.stars"].stars == ["pkg.core", "pkg.sub"]
    assert core.spans["Base"][0] < core.spans["Base"][1]
    top = index.modules["pkg"]
    assert top.lazy == {"Lazy": "pkg.lazy_mod:LazyThing", "Other": "pkg.core:helper"}
    assert index.modules["pkg.facade"].lazy == {"Thing": "pkg.lazy_mod:LazyThing", "whole": "pkg.core", "Wrapper": ""}
    assert index.modules["pkg.moved"].lazy == {"OldName": "pkg.lazy_mod:LazyThing"}


def test_class_shapes(index):
    base = index.modules["pkg.core"].classes["Base"]
    assert base.bases == ["torch.nn:Module"]
    assert set(base.methods) == {"__init__", "forward", "make", "tool", "size"}
    init = base.methods["__init__"]
    assert init.signature() == "(self, a, b=1, *args, c, d=None, **kwargs)"
    assert init.signature(bound=True) == "(a, b=1, *args, c, d=None, **kwargs)"
    assert base.methods["forward"].signature() == "(self, x, /, y=2)"
    assert base.methods["make"].kind == "classmethod"
    assert base.methods["tool"].kind == "staticmethod"
    assert base.methods["size"].kind == "property"
    assert set(base.instance_attributes) == {"a", "w", "v"}
    assert base.attributes["flag"] == "assign"
    assert "missing" in base.methods["forward"].self_reads
    record = index.modules["pkg.core"].classes["Record"]
    assert record.is_dataclass
    assert [(f.name, f.has_default, f.init) for f in record.fields] == [
        ("name", False, True),
        ("count", True, True),
        ("tags", True, True),
        ("hidden", True, False),
    ]
    child = index.modules["pkg.sub.leaf"].classes["Child"]
    assert child.bases == ["pkg.core:Base"]


def test_check_call_against_signature(index):
    init = index.modules["pkg.core"].classes["Base"].methods["__init__"]
    assert init.check_call(1, ["c"], bound=True) == []
    assert init.check_call(5, ["c", "zzz"], bound=True) == []  # *args and **kwargs take them
    helper = index.modules["pkg.core"].functions["helper"]
    assert helper.check_call(1, ["k"]) == []
    assert helper.check_call(2, []) == ["takes 1 positional argument(s) but 2 given"]
    assert helper.check_call(1, ["j"]) == ["unexpected keyword argument 'j'"]
    assert helper.check_call(0, []) == ["missing required argument(s) 'x'"]
    assert helper.check_call(0, [], star_args=True) == []
    assert helper.check_call(1, ["x"]) == ["multiple values for argument 'x'"]


def test_resolution_follows_reexports_lazy_maps_and_stars(resolver):
    base = resolver.resolve("pkg", "Base")
    assert (base.module, base.name, base.kind) == ("pkg.core", "Base", "class")
    lazy = resolver.resolve("pkg", "Lazy")
    assert (lazy.module, lazy.name, lazy.type_checking) == ("pkg.lazy_mod", "LazyThing", False)
    assert resolver.resolve("pkg", "Other").module == "pkg.core"
    assert resolver.resolve("pkg.stars", "helper").module == "pkg.core"
    assert resolver.resolve("pkg.stars", "visible").module == "pkg.sub"
    assert resolver.resolve("pkg.stars", "leaf_fn").module == "pkg.sub.leaf"
    assert resolver.resolve("pkg.stars", "_private") is None  # __all__ of core excludes it
    assert resolver.resolve("pkg.stars", "_hidden") is None
    assert resolver.resolve("pkg.moved", "OldName").name == "LazyThing"
    assert resolver.resolve("pkg.facade", "Thing").name == "LazyThing"  # _EXPORTS.get(name)
    assert resolver.resolve("pkg.facade", "Wrapper").kind == "lazy"  # name in __all__, annotation only
    assert resolver.resolve("pkg.facade", "Other") is None
    assert resolver.resolve("pkg.facade", "whole").module == "pkg.core"  # a whole-module re-export
    assert resolver.resolve("pkg.sub", "leaf").kind == "module"
    assert resolver.resolve("pkg.core", "nope") is None
    assert resolver.resolve("torch.nn", "Anything").kind == "external"
    typed = resolver.resolve("pkg.core", "OnlyTyped")
    assert typed is not None and typed.type_checking


def test_defining_modules(index):
    assert index.defining_modules("LazyThing") == ["pkg.lazy_mod"]


def test_mro_members_and_constructor(resolver):
    mro = resolver.mro("pkg.sub.leaf", "Child")
    assert [cls.name for _, cls in mro.classes] == ["Child", "Base"]
    assert mro.external == ["torch.nn.Module"]
    member = resolver.find_member("pkg.sub.leaf", "Child", "make")
    assert (member.owner, member.kind) == ("Base", "classmethod")
    assert resolver.find_member("pkg.sub.leaf", "Child", "a").kind == "instance"
    assert resolver.find_member("pkg.sub.leaf", "Child", "zzz") is None
    ctor, _ = resolver.constructor("pkg.sub.leaf", "Child")
    assert ctor.owner == "Child"
    record, _ = resolver.constructor("pkg.core", "Record")
    assert record.function.signature(bound=True) == "(name, count=0, tags=field(default_factory=list))"


def test_unresolved_imports_of_a_file(resolver):
    source = textwrap.dedent(
        """
        from pkg.core import Base, helpr, OnlyTyped
        from pkg.gone import LazyThing
        from .core import Record
        import pkg.sub.leaf
        import pkg.nowhere
        import torch
        from torch import nn
        if TYPE_CHECKING:
            from pkg.core import OnlyTyped as Fine
        def f():
            from pkg.lazy_mod import Missing
        """
    )
    problems = file_imports.unresolved_imports(source, "pkg.newmodel", resolver)
    described = {(p.ref.module, p.ref.name, p.reason) for p in problems}
    assert described == {
        ("pkg.core", "helpr", "name"),
        ("pkg.core", "OnlyTyped", "type-checking"),
        ("pkg.gone", "LazyThing", "module"),
        ("pkg.nowhere", None, "module"),
        ("pkg.lazy_mod", "Missing", "name"),
    }
    by_name = {p.ref.name: p for p in problems}
    assert by_name["helpr"].nearest == ("helper",)
    assert [s.module for s in by_name["LazyThing"].elsewhere] == ["pkg.lazy_mod"]
    assert [s.module for s in by_name["OnlyTyped"].elsewhere] == ["pkg.lazy_mod"]
    assert by_name["Missing"].ref.nested
    assert by_name["helpr"].describe() == "pkg.core has no helpr in the pin; nearest there: helper"
    assert by_name["helpr"].describe("the pinned pkg 1.0", hints=False) == "pkg.core has no helpr in the pinned pkg 1.0"
    assert by_name["OnlyTyped"].describe("the plugin", hints=False) == (
        "pkg.core binds OnlyTyped only under TYPE_CHECKING in the plugin"
    )
    assert by_name[None].describe(hints=False) == "no module pkg.nowhere in the pin"


def test_self_check_of_a_sound_tree_and_a_broken_one(index, tmp_path):
    assert file_imports.self_check(index) == []
    root = write(
        tmp_path / "broken",
        {**PKG, "pkg/bad.py": "from pkg.core import nothing\nfrom pkg._gone import ops\nfrom pkg._C import ops\n"},
    )
    problems = file_imports.self_check(build.index_directory(root, "pkg"))
    assert [(m, p.ref.name) for m, p in problems] == [("pkg.bad", "nothing"), ("pkg.bad", "ops")]


def test_build_index_caches_by_content(tmp_path, monkeypatch):
    monkeypatch.setenv("FLMIGRATE_CACHE", str(tmp_path / "cache"))
    root = write(tmp_path / "tree", PKG)
    tree = SourceTree(root=root, package="pkg", source="test", version="1.0")
    first = build.build_index(tree)
    cached = list((tmp_path / "cache" / "index").glob("pkg-1.0-*.sqlite"))
    assert cached == [build.cache_path(tree, first.digest)]
    again = build.build_index(tree)
    assert again.modules["pkg.core"].classes["Base"] == first.modules["pkg.core"].classes["Base"]
    assert again.modules["pkg.core"].classes["Base"].methods["__init__"].params[1].name == "a"
    (root / "pkg" / "core.py").write_text("X = 1\n")
    changed = build.build_index(tree)
    assert "Base" not in changed.modules["pkg.core"].defines
    assert len(list((tmp_path / "cache" / "index").glob("pkg-*.sqlite"))) == 2
