"""Relocations: names the pinned vLLM (or its transformers) defines under another module.

Upstream moves definitions around (``Attention``: ``vllm.attention.layer`` in 0.13.0,
``vllm.model_executor.layers.attention`` upstream). When an import of a migrated file fails
against the pin, and the pin defines the same name elsewhere as *the same API*, the import can
simply point there (catalog P15). "The same API" is decided by comparing the two real trees:

- the kind agrees: class for class, function for function, assignment for assignment;
- functions: the same code (docstrings, comments, formatting and annotations aside), since a
  helper whose body changed upstream must be backported, not swapped for the pin's version;
- functions and constructors: every parameter the pin requires is required upstream too, every
  parameter upstream requires is accepted by the pin, and upstream's required positional
  parameters sit at the same positions in the pin (extra optional parameters on either side
  are the call checks' business, not a reason to copy the class);
- classes: at least half of the pinned class's own members (methods, class attributes,
  fields) are still members of the upstream class (a homonym shares almost none), and every
  operator or protocol method upstream's class defines (``__or__``, ``__iter__``...) the pinned
  class has too (code written for upstream's ``a |= b`` fails on the pin's class otherwise);
- assignments: constants have the same value; type aliases (subscripts, unions) are similar text.

Among several candidates the most similar one wins (shared parameters and members, then
source similarity, then the resolver's order: public modules, fewer dots). Decisions are keyed
by the upstream definition and the pinned trees, and cached on disk
(``<cache>/relocations/<pinned>-from-<upstream>.json``), so a rerun never recomputes them.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import json
import textwrap
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from pytest_flmigrate.index import sources
from pytest_flmigrate.index.records import (
    KEYWORD_ONLY,
    POSITIONAL_ONLY,
    POSITIONAL_OR_KEYWORD,
    VAR_KEYWORD,
    VAR_POSITIONAL,
    ClassInfo,
    FunctionInfo,
    TreeIndex,
)
from pytest_flmigrate.index.resolve import Resolver, Symbol
from pytest_flmigrate.manifest import atomic_write

CACHE_FORMAT = 2
#: Special methods that do not make a class's API: construction, text forms, pickling, typing.
NOT_PROTOCOL = frozenset(
    {
        "__init__",
        "__new__",
        "__post_init__",
        "__init_subclass__",
        "__class_getitem__",
        "__repr__",
        "__str__",
        "__format__",
        "__hash__",
        "__del__",
        "__getstate__",
        "__setstate__",
        "__reduce__",
        "__reduce_ex__",
    }
)
DEFINITION_KINDS = ("class", "function", "assign")
MIN_MEMBERS_KEPT = 0.5  # share of the pinned class's own members that upstream still has
MIN_ASSIGN_SIMILARITY = 0.6  # difflib ratio of the two right-hand sides


@dataclass(frozen=True)
class Relocation:
    """``upstream`` (defining module, name) is ``pinned`` (module, name) in the pin."""

    upstream: tuple[str, str]
    pinned: tuple[str, str]
    kind: str
    evidence: str

    def to_json(self) -> list[str]:
        return [self.pinned[0], self.pinned[1], self.kind, self.evidence]


@dataclass(frozen=True)
class Rejected:
    """Why a pinned homonym is not the same API (for findings)."""

    module: str
    reason: str


class Relocator:
    """Finds, for an upstream import the pin lacks, where the pin defines the same API."""

    def __init__(
        self,
        upstream: Resolver,
        pinned: Resolver,
        cache_file: Path | None = None,
    ) -> None:
        self.upstream = upstream
        self.pinned = pinned
        self.cache_file = cache_file
        self._decisions: dict[str, Relocation | None] = {}
        self._rejections: dict[str, tuple[Rejected, ...]] = {}
        self._dirty = False
        if cache_file is not None:
            self._decisions.update(_load(cache_file))

    # -- questions ---------------------------------------------------------------------------

    def definition(self, module: str, name: str) -> Symbol | None:
        """The upstream definition ``from module import name`` reaches (class/function/assign)."""
        return definition_of(self.upstream, module, name)

    def for_import(self, module: str, name: str) -> Relocation | None:
        """Where the pin defines what upstream's ``from module import name`` imports, if the
        import fails in the pin and the pin has the same API elsewhere."""
        if self._works_in_pin(module, name):
            return None
        symbol = self.definition(module, name)
        return self.for_definition(symbol) if symbol is not None else None

    def for_definition(self, symbol: Symbol) -> Relocation | None:
        key = f"{symbol.module}:{symbol.name}"
        if key not in self._decisions:
            self._decisions[key] = self._decide(symbol)
            self._dirty = True
        return self._decisions[key]

    def rejections(self, module: str, name: str) -> tuple[Rejected, ...]:
        """Pinned homonyms of an upstream name judged a different API, with the reason."""
        symbol = self.definition(module, name)
        if symbol is None:
            return ()
        key = f"{symbol.module}:{symbol.name}"
        if key not in self._rejections:
            self._rejections[key] = tuple(self._judge(symbol)[1])
        return self._rejections[key]

    def _works_in_pin(self, module: str, name: str) -> bool:
        found = self.pinned.resolve(module, name)
        return found is not None and not found.type_checking

    # -- deciding ----------------------------------------------------------------------------

    def _decide(self, symbol: Symbol) -> Relocation | None:
        accepted, rejected = self._judge(symbol)
        self._rejections[f"{symbol.module}:{symbol.name}"] = tuple(rejected)
        if not accepted:
            return None
        accepted.sort(key=lambda item: -item[0])
        _, candidate, evidence = accepted[0]
        return Relocation((symbol.module, symbol.name), (candidate.module, candidate.name), symbol.kind, evidence)

    def _judge(self, symbol: Symbol) -> tuple[list[tuple[float, Symbol, str]], list[Rejected]]:
        top = symbol.module.split(".")[0]
        accepted: list[tuple[float, Symbol, str]] = []
        rejected: list[Rejected] = []
        candidates = [s for s in self.pinned.locate(symbol.name, top) if not s.type_checking]
        for order, candidate in enumerate(candidates):
            if candidate.kind != symbol.kind:
                rejected.append(Rejected(candidate.module, f"a {candidate.kind} in the pin, a {symbol.kind} upstream"))
                continue
            verdict = self._compare(symbol, candidate)
            if isinstance(verdict, str):
                rejected.append(Rejected(candidate.module, verdict))
                continue
            score, evidence = verdict
            accepted.append((score - order * 1e-6, candidate, evidence))
        return accepted, rejected

    def _compare(self, up: Symbol, pin: Symbol) -> tuple[float, str] | str:
        """(score, evidence) when ``pin`` is the same API as ``up``, else the reason it is not."""
        similarity = _similarity(self._source(self.upstream, up), self._source(self.pinned, pin))
        if up.kind == "function":
            up_fn, pin_fn = self.upstream.function_of(up), self.pinned.function_of(pin)
            if up_fn is None or pin_fn is None:
                return "no signature to compare"
            problem = signature_mismatch(up_fn, pin_fn, bound=False)
            if problem:
                return problem
            if not same_code(self._source(self.upstream, up), self._source(self.pinned, pin)):
                return f"the function's code differs (similarity {similarity:.2f}); relocating would change behaviour"
            shared = _shared_params(up_fn, pin_fn, bound=False)
            return shared + similarity, f"same code, parameters {pin_fn.signature()}"
        if up.kind == "class":
            up_cls, pin_cls = self.upstream.class_of(up), self.pinned.class_of(pin)
            if up_cls is None or pin_cls is None:
                return "no class shape to compare"
            up_init, _ = self.upstream.constructor(up.module, up.name)
            pin_init, _ = self.pinned.constructor(pin.module, pin.name)
            shared = 0.0
            if up_init is not None and pin_init is not None and up_init.function and pin_init.function:
                problem = signature_mismatch(up_init.function, pin_init.function, bound=True)
                if problem:
                    return f"constructor: {problem}"
                shared = _shared_params(up_init.function, pin_init.function, bound=True)
            pinned_members = _own_members(pin_cls)
            kept = len(pinned_members & _own_members(up_cls))
            if pinned_members and kept / len(pinned_members) < MIN_MEMBERS_KEPT:
                return f"only {kept} of the pinned class's {len(pinned_members)} members exist upstream"
            gap = protocol_gap(up_cls, self.pinned, pin)
            if gap:
                return gap
            return (
                shared + kept + similarity,
                f"constructor compatible; {kept} of {len(pinned_members)} pinned members kept upstream",
            )
        # assignments: constants must be the same value; type aliases only similar
        up_value, pin_value = self._source(self.upstream, up), self._source(self.pinned, pin)
        if same_code(up_value, pin_value):
            return 1.0 + similarity, "same value"
        if _is_type_expression(up_value) and _is_type_expression(pin_value) and similarity >= MIN_ASSIGN_SIMILARITY:
            return similarity, f"type alias, similar (similarity {similarity:.2f})"
        return f"a different value (similarity {similarity:.2f})"

    def _source(self, resolver: Resolver, symbol: Symbol) -> str:
        info = resolver.module(symbol.module)
        index = resolver.index_for(symbol.module)
        if info is None or index is None or symbol.name not in info.spans:
            return ""
        first, last = info.spans[symbol.name]
        try:
            lines = (index.root / info.path).read_text(encoding="utf-8").splitlines()
        except OSError:
            return ""
        text = "\n".join(lines[first - 1 : last])
        if symbol.kind == "assign":
            text = _assigned_value(text)
        return text

    # -- the cache ---------------------------------------------------------------------------

    def save(self) -> None:
        """Write the decisions made so far to the cache file (merged with what is there)."""
        if self.cache_file is None or not self._dirty:
            return
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.cache_file) + ".lock"):
            merged = _load(self.cache_file)
            merged.update(self._decisions)
            payload = {
                "format": CACHE_FORMAT,
                "decisions": {key: (value.to_json() if value else None) for key, value in sorted(merged.items())},
            }
            atomic_write(self.cache_file, json.dumps(payload, indent=0, sort_keys=True))
        self._dirty = False


def definition_of(resolver: Resolver, module: str, name: str) -> Symbol | None:
    """The top-level class, function or assignment ``from module import name`` reaches in
    ``resolver``'s trees (not one bound only under TYPE_CHECKING), else None."""
    found = resolver.resolve(module, name)
    if found is None or found.kind not in DEFINITION_KINDS or found.type_checking or "." in found.name:
        return None
    return found


def signature_mismatch(upstream: FunctionInfo, pinned: FunctionInfo, *, bound: bool) -> str | None:
    """Why calls written for ``upstream`` cannot target ``pinned``, or None when they can."""
    up = upstream.bound_params(bound)
    pin = pinned.bound_params(bound)
    pin_named = {p.name: p for p in pin if p.kind in (POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD, KEYWORD_ONLY)}
    up_named = {p.name: p for p in up if p.kind in (POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD, KEYWORD_ONLY)}
    pin_varkw = any(p.kind == VAR_KEYWORD for p in pin)
    pin_varargs = any(p.kind == VAR_POSITIONAL for p in pin)
    for name, param in pin_named.items():
        if not param.has_default and (name not in up_named or up_named[name].has_default):
            return f"the pin requires '{name}', upstream {'does not have it' if name not in up_named else 'makes it optional'}"
    for name, param in up_named.items():
        if not param.has_default and name not in pin_named and not pin_varkw:
            return f"upstream requires '{name}', the pin does not accept it"
    pin_positional = [p.name for p in pin if p.kind in (POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD)]
    up_positional = [p for p in up if p.kind in (POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD)]
    for position, param in enumerate(up_positional):
        if param.has_default:
            break
        if position >= len(pin_positional):
            if pin_varargs:
                break
            return (
                f"upstream's required '{param.name}' is positional #{position + 1}, the pin takes {len(pin_positional)}"
            )
        if pin_positional[position] != param.name:
            return f"positional #{position + 1} is '{param.name}' upstream, '{pin_positional[position]}' in the pin"
    return None


def _shared_params(upstream: FunctionInfo, pinned: FunctionInfo, *, bound: bool) -> float:
    up = {p.name for p in upstream.bound_params(bound)}
    pin = {p.name for p in pinned.bound_params(bound)}
    return len(up & pin) / max(1, len(up | pin))


def protocol_gap(upstream_class: ClassInfo, pinned: Resolver, pin: Symbol) -> str | None:
    """Why the pin's class ``pin`` is not upstream's for code using its operators: the operator
    and protocol methods ``upstream_class`` defines that the pin's class (own or inherited) lacks."""
    missing = sorted(
        name
        for name in upstream_class.methods
        if name.startswith("__")
        and name.endswith("__")
        and name not in NOT_PROTOCOL
        and pinned.find_member(pin.module, pin.name, name) is None
    )
    return f"upstream's class defines {', '.join(missing)}, which the pin's lacks" if missing else None


def _own_members(cls: ClassInfo) -> set[str]:
    return set(cls.methods) | set(cls.attributes) | {f.name for f in cls.fields} | set(cls.instance_attributes)


def same_code(a: str, b: str) -> bool:
    """Whether two definitions (or expressions) are the same code once docstrings, comments,
    formatting and annotations are set aside."""
    first, second = _normalized(a), _normalized(b)
    return first is not None and first == second


def _normalized(text: str) -> str | None:
    try:
        tree = ast.parse(textwrap.dedent(text))
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
        if isinstance(node, ast.arg):
            node.annotation = None
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            node.returns = None
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def _assigned_value(statement: str) -> str:
    """The right-hand side of an assignment's source (``X: T = value`` -> ``value``)."""
    try:
        tree = ast.parse(textwrap.dedent(statement))
    except SyntaxError:
        return statement.partition("=")[2]
    node = tree.body[0] if tree.body else None
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
        return ast.get_source_segment(textwrap.dedent(statement), node.value) or ""
    return statement.partition("=")[2]


def _is_type_expression(text: str) -> bool:
    """``Mapping[str, list[int]]``, ``A | B``, ``Union[...]``, ``TypeAlias``-like values."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return False
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _is_type_expression(ast.unparse(node.left)) and _is_type_expression(ast.unparse(node.right))
    return isinstance(node, (ast.Subscript, ast.Name, ast.Attribute))


def _similarity(a: str, b: str) -> float:
    """difflib ratio: by characters for short texts, by stripped lines for long ones."""
    if not a or not b:
        return 0.0
    if len(a) + len(b) < 4000:
        return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
    lines_a = [line.strip() for line in a.splitlines()]
    lines_b = [line.strip() for line in b.splitlines()]
    return difflib.SequenceMatcher(None, lines_a, lines_b, autojunk=False).ratio()


# ---------------------------------------------------------------------------------------------
# The decision cache


def fingerprint(index: TreeIndex) -> str:
    """A digest of an index's tree: package, version and the hash of its sources."""
    return hashlib.sha256(f"{index.package}:{index.version}:{index.digest}".encode()).hexdigest()[:12]


def cache_path(upstream_indexes: list[TreeIndex], pinned_indexes: list[TreeIndex]) -> Path:
    """``<cache>/relocations/vllm-0.13.0-<digest>-from-vllm-0.33.0-<digest>.json``."""

    def label(indexes: list[TreeIndex]) -> str:
        main = indexes[0]
        digest = hashlib.sha256("".join(fingerprint(i) for i in indexes).encode()).hexdigest()[:12]
        return f"{main.package}-{main.version}-{digest}"

    return sources.cache_dir() / "relocations" / f"{label(pinned_indexes)}-from-{label(upstream_indexes)}.json"


def _load(path: Path) -> dict[str, Relocation | None]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if payload.get("format") != CACHE_FORMAT:
        return {}
    decisions: dict[str, Relocation | None] = {}
    for key, value in payload.get("decisions", {}).items():
        module, _, name = key.partition(":")
        decisions[key] = Relocation((module, name), (value[0], value[1]), value[2], value[3]) if value else None
    return decisions
