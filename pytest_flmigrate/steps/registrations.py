"""What ``register_model()`` in ``vllm_fl/__init__.py`` registers, read with libcst.

:func:`registered_entries` and :func:`registered_configs` read back the architectures and config
bridges it registers (targets given as class objects are resolved through the imports in scope);
:func:`registration_mismatches` compares them with what a migration expects, and
:func:`unresolved_entries` finds what in a model's part of ``register_model()`` would fail to import
at run time (where the ``except`` would only log it), for step 5's tests and step 6's registration
check alike. :func:`scan_register_model` is the scan register.py edits from.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.index.resolve import Resolver
from pytest_flmigrate.layout import PLUGIN_PACKAGE, REGISTRATION_FILE
from pytest_flmigrate.patches.syntax import dotted_name

CONFIG_REGISTRY_NAME = "_CONFIG_REGISTRY"
#: vLLM's table of config hooks (``vllm.model_executor.models.config``): architecture -> hook class.
HOOKS_MAP_NAME = "MODELS_CONFIG_MAP"
#: Where the newest plugin keeps model-specific runtime patches (``vllm_fl/patches/<topic>.py``).
PATCHES_PACKAGE = "patches"


@dataclass(frozen=True)
class Mismatch:
    """An architecture (or a bridged config's model_type) registered elsewhere or not at all."""

    key: str
    expected: str
    actual: str | None  # None: not registered
    config: bool = False

    def describe(self) -> str:
        """What is wrong, without the key (``not registered; expected vllm_fl.models.x:XForCausalLM``)."""
        if self.actual is None:
            return f"{'config bridge ' if self.config else ''}not registered; expected {self.expected}"
        return f"{'config ' if self.config else ''}registered as {self.actual}, expected {self.expected}"


def registration_mismatches(
    init_source: str,
    architectures: Iterable[tuple[str, str]],
    plugin_module: str | None,
    bridge: tuple[str, str, str] | None = None,
    path: str = REGISTRATION_FILE,
) -> list[Mismatch]:
    """Each architecture (name, class) must be registered at ``plugin_module:class``, and the
    bridge (model_type, class, module), when there is one, at ``module:class``."""
    entries = registered_entries(init_source, path)
    found = [Mismatch(arch, f"{plugin_module}:{cls}", entries.get(arch)) for arch, cls in architectures]
    if bridge is not None:
        model_type, cls, module = bridge
        found.append(
            Mismatch(model_type, f"{module}:{cls}", registered_configs(init_source, path).get(model_type), True)
        )
    return [m for m in found if m.actual != m.expected]


def registered_entries(init_source: str, path: str = REGISTRATION_FILE) -> dict[str, str]:
    """Architecture -> ``"module:Class"`` as ``register_model()`` registers them.

    A target given as a class object is resolved through the imports in scope; one that cannot
    be resolved is given as its source text. When an architecture is registered twice the later
    registration wins, as it does at run time.
    """
    module = parse_init(init_source, path)
    scan = scan_register_model(module, find_register_model(module, path))
    return {f.key: str(f.target) for f in scan.archs}


def registered_configs(init_source: str, path: str = REGISTRATION_FILE) -> dict[str, str]:
    """model_type -> ``"module:Class"`` of the ``_CONFIG_REGISTRY`` entries of register_model()."""
    module = parse_init(init_source, path)
    scan = scan_register_model(module, find_register_model(module, path))
    return {f.key: str(f.target) for f in scan.configs}


def registered_hooks(init_source: str, path: str = REGISTRATION_FILE) -> dict[str, str]:
    """architecture -> ``"module:Class"`` of the ``MODELS_CONFIG_MAP`` entries of register_model()."""
    module = parse_init(init_source, path)
    scan = scan_register_model(module, find_register_model(module, path))
    return {f.key: str(f.target) for f in scan.hooks}


@dataclass(frozen=True)
class Unresolved:
    """Something a model's registration imports (or registers) that does not exist at run time."""

    key: str  # the entry (architecture, model_type, override) or the import it depends on
    line: int
    message: str  # why it fails (for an entry: its target first)

    def format(self, path: str = REGISTRATION_FILE) -> str:
        return f"{path}:{self.line}: {self.key}: {self.message}"


def unresolved_entries(
    init_source: str, keys: Iterable[str], resolver: Resolver, path: str = REGISTRATION_FILE
) -> list[Unresolved]:
    """What would fail when ``register_model()`` registers the entries ``keys`` (architectures,
    config model_types, ``<in-tree module>.<Class>`` overrides): every import in the statements
    holding them (their ``try`` blocks) and at the top of the function, and every ``module:Class``
    they register, checked against ``resolver`` (the pinned vLLM, its transformers and the
    plugin as written). A name bound only under ``TYPE_CHECKING`` does not exist at run time;
    modules no index covers (torch, ...) are not judged."""
    module = parse_init(init_source, path)
    func = find_register_model(module, path)
    scan = scan_register_model(module, func)
    wanted = set(keys)
    entries = [f for f in (*scan.archs, *scan.configs, *scan.overrides, *scan.hooks) if f.key in wanted]
    blocks = {f.block for f in entries}
    top = {i for i, stmt in enumerate(body_statements(func)) if _is_import_line(stmt)}
    found: list[Unresolved] = []
    for imported in sorted(i for i in scan.imports if i.block in blocks | top):
        why = _missing(resolver, imported.module, imported.name)
        if why:
            found.append(Unresolved(imported.label, imported.line, why))
    for entry in entries:
        target = entry.target
        if target.module is None or target.cls is None:
            continue
        why = _missing(resolver, target.module, target.cls)
        if why:
            found.append(Unresolved(entry.key, entry.line, f"{target}: {why}"))
    return found


def _missing(resolver: Resolver, module: str, name: str | None) -> str | None:
    """Why ``from module import name`` (``import module`` without a name) fails at run time."""
    if not resolver.covers(module):
        return None
    info = resolver.module(module)
    if info is None:
        near = resolver.nearest_modules(module)
        return f"no module {module}" + (f"; nearest: {', '.join(near)}" if near else "")
    if name is None:
        return None
    symbol = resolver.resolve(module, name)
    if symbol is None:
        if info.dynamic_getattr:
            return None  # a module __getattr__ may provide it: not judged
        near = resolver.nearest(module, name)
        return f"{module} has no {name}" + (f"; nearest: {', '.join(near)}" if near else "")
    if symbol.type_checking:
        return f"{module} binds {name} only under TYPE_CHECKING (absent at run time)"
    return None


def _is_import_line(stmt: cst.BaseStatement) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and any(
        isinstance(small, (cst.Import, cst.ImportFrom)) for small in stmt.body
    )


# --------------------------------------------------------------------------- parsing


def parse_init(source: str, path: str) -> cst.Module:
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError as err:
        line, col = err.editor_line, err.editor_column
        try:  # CPython's parser usually points closer to the mistake than libcst's
            ast.parse(source)
        except SyntaxError as py_err:
            if py_err.lineno:
                line, col = py_err.lineno, py_err.offset or 1
        raise FlmigrateError(
            f"{path}:{line}:{col}: syntax error, cannot parse {path}; "
            "fix it (python -m py_compile shows the same) and rerun",
            detail=str(err),
        ) from None


def find_register_model(module: cst.Module, path: str) -> cst.FunctionDef:
    found = [
        s
        for s in module.body
        if isinstance(s, cst.FunctionDef) and s.name.value == "register_model" and s.asynchronous is None
    ]
    if not found:
        raise FlmigrateError(
            f"{path} has no register_model(): add a module-level `def register_model():` "
            "(the vllm.general_plugins entry point, `fl = vllm_fl:register_model` in setup.py) "
            "and rerun"
        )
    return found[-1]  # as at run time, the last definition wins


def _string(node: cst.BaseExpression) -> str | None:
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


# --------------------------------------------------------------------------- scanning


@dataclass(frozen=True)
class _Target:
    """What an entry points at: ``module:Class``, or unresolved source text."""

    text: str
    module: str | None = None
    cls: str | None = None

    def matches(self, module: str, cls: str) -> bool:
        if self.cls != cls:
            return False
        # A bare class name that no import in scope explains: judge by the name alone.
        return self.module is None or self.module == module

    def __str__(self) -> str:
        return f"{self.module}:{self.cls}" if self.module else self.text


@dataclass(frozen=True)
class Found:
    key: str  # architecture / model_type / "<in-tree module>.<Class>"
    target: _Target
    line: int
    block: int  # index of the register_model() body statement it is in


@dataclass
class Scan:
    module_bindings: dict[str, str]
    function_bindings: dict[str, str]
    module_defines: set[str]
    archs: list[Found] = field(default_factory=list)
    configs: list[Found] = field(default_factory=list)
    overrides: list[Found] = field(default_factory=list)
    hooks: list[Found] = field(default_factory=list)  # MODELS_CONFIG_MAP entries, by architecture
    # body index -> names bound by imports anywhere inside that statement
    block_bindings: dict[int, dict[str, str]] = field(default_factory=dict)
    imports: list[Imported] = field(default_factory=list)
    # (line, where) of registrations the entries above do not hold: in other functions, at import
    # time, or with a key that is not a string literal (a table, a loop)
    elsewhere: list[tuple[int, str]] = field(default_factory=list)
    # the level the except clauses of register_model() log at (``warning``, ``error``...), if any
    log_level: str | None = None
    # names of functions register_model() calls that come from the plugin's patches package
    patch_calls: list[str] = field(default_factory=list)


@dataclass(frozen=True, order=True)
class Imported:
    """One imported name of register_model(): ``from module import name`` (name None: ``import module``)."""

    line: int
    module: str
    name: str | None
    block: int

    @property
    def label(self) -> str:
        return f"from {self.module} import {self.name}" if self.name else f"import {self.module}"


def import_bindings(node: cst.Import | cst.ImportFrom) -> dict[str, str]:
    """Local name -> dotted thing it binds."""
    out: dict[str, str] = {}
    if isinstance(node, cst.Import):
        for alias in node.names:
            dotted = dotted_name(alias.name)
            if dotted is None:
                continue
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                out[alias.asname.name.value] = dotted
            else:
                head = dotted.split(".")[0]
                out[head] = head
        return out
    if isinstance(node.names, cst.ImportStar):
        return out
    base = _from_module(node)
    if not base:
        return out
    for alias in node.names:
        name = dotted_name(alias.name)
        if name is None:
            continue
        local = name
        if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
            local = alias.asname.name.value
        out[local] = f"{base}.{name}"
    return out


def _from_module(node: cst.ImportFrom) -> str:
    """The absolute module of ``from ... import``, relative ones taken against the plugin's package."""
    base = dotted_name(node.module) if node.module is not None else ""
    if node.relative:
        parts = PLUGIN_PACKAGE.split(".")
        parts = parts[: max(len(parts) - (len(node.relative) - 1), 0)]
        base = ".".join(p for p in [*parts, base] if p)
    return base or ""


def _imported_names(node: cst.Import | cst.ImportFrom) -> list[tuple[str, str | None]]:
    """(module, name) of every name an import statement imports (name None: ``import module``)."""
    if isinstance(node, cst.Import):
        return [(dotted, None) for alias in node.names if (dotted := dotted_name(alias.name)) is not None]
    base = _from_module(node)
    if not base or isinstance(node.names, cst.ImportStar):
        return []
    return [(base, name) for alias in node.names if (name := dotted_name(alias.name)) is not None]


def direct_bindings(statements: Iterable[cst.CSTNode]) -> dict[str, str]:
    out: dict[str, str] = {}
    for stmt in statements:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, (cst.Import, cst.ImportFrom)):
                    out.update(import_bindings(small))
    return out


def _module_defines(module: cst.Module) -> set[str]:
    """Names assigned, defined or imported by direct module-level statements."""
    names: set[str] = set(direct_bindings(module.body))
    for stmt in module.body:
        if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
            names.add(stmt.name.value)
        elif isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                targets: list[cst.BaseExpression] = []
                if isinstance(small, cst.Assign):
                    targets = [t.target for t in small.targets]
                elif isinstance(small, cst.AnnAssign) and small.value is not None:
                    targets = [small.target]
                names.update(t.value for t in targets if isinstance(t, cst.Name))
    return names


class _Collector(cst.CSTVisitor):
    """Collects imports, registrations, config and override assignments in one statement."""

    def __init__(self) -> None:
        super().__init__()
        self.bindings: dict[str, str] = {}
        self.calls: list[cst.Call] = []
        self.assigns: list[cst.Assign] = []
        self.imports: list[cst.Import | cst.ImportFrom] = []
        self.called: list[cst.Call] = []

    # Nested scopes do not run when register_model() runs.
    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_Import(self, node: cst.Import) -> None:
        self.bindings.update(import_bindings(node))
        self.imports.append(node)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        self.bindings.update(import_bindings(node))
        self.imports.append(node)

    def visit_Call(self, node: cst.Call) -> None:
        self.called.append(node)
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value == "register_model":
            owner = dotted_name(func.value)
            if owner is not None and owner.split(".")[-1] == "ModelRegistry":
                self.calls.append(node)

    def visit_Assign(self, node: cst.Assign) -> None:
        self.assigns.append(node)


class _AnyRegistration(cst.CSTVisitor):
    """Every registration of the module, wherever it is: ``ModelRegistry.register_model(...)``,
    ``..._CONFIG_REGISTRY[...] = ...`` and ``..._CONFIG_REGISTRY.update(...)``, with the function
    it is in (None: at import time)."""

    def __init__(self) -> None:
        super().__init__()
        self.functions: list[cst.FunctionDef] = []
        self.found: list[tuple[cst.CSTNode, cst.FunctionDef | None]] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.functions.append(node)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.functions.pop()

    def _add(self, node: cst.CSTNode) -> None:
        self.found.append((node, self.functions[-1] if self.functions else None))

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute):
            owner = dotted_name(func.value) or ""
            if (func.attr.value == "register_model" and owner.split(".")[-1] == "ModelRegistry") or (
                func.attr.value in ("update", "setdefault") and owner.split(".")[-1] == CONFIG_REGISTRY_NAME
            ):
                self._add(node)

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            if isinstance(target.target, cst.Subscript):
                owner = dotted_name(target.target.value) or ""
                if owner.split(".")[-1] == CONFIG_REGISTRY_NAME:
                    self._add(node)


def _elsewhere(module: cst.Module, func: cst.FunctionDef, captured: set[int], positions) -> list[tuple[int, str]]:
    """(line, where) of the module's registrations that are not entries of register_model()."""
    visitor = _AnyRegistration()
    module.visit(visitor)
    found = []
    for node, enclosing in visitor.found:
        if id(node) in captured:
            continue
        if enclosing is None:
            where = "at import time (module level)"
        elif enclosing is func:
            where = "in register_model() with an architecture or model_type that is not a string literal (a table or a loop)"
        elif enclosing.name.value == "register_model":
            where = "in a register_model() that a later definition replaces"
        else:
            where = f"in {enclosing.name.value}(), outside register_model()"
        found.append((positions[node].start.line, where))
    return found


def _log_level(body: Sequence[cst.BaseStatement]) -> str | None:
    """The level the last ``except`` clause of ``body`` that logs uses (``logger.error(...)``)."""
    level = None
    for stmt in body:
        if not isinstance(stmt, cst.Try):
            continue
        for handler in stmt.handlers:
            for line in handler.body.body if isinstance(handler.body, cst.IndentedBlock) else ():
                for small in line.body if isinstance(line, cst.SimpleStatementLine) else ():
                    call = small.value if isinstance(small, cst.Expr) else None
                    if (
                        isinstance(call, cst.Call)
                        and isinstance(call.func, cst.Attribute)
                        and call.func.attr.value in _LOG_LEVELS
                    ):
                        level = call.func.attr.value
    return level


_LOG_LEVELS = ("debug", "info", "warning", "error", "exception", "critical")


def scan_register_model(module: cst.Module, func: cst.FunctionDef) -> Scan:
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    body = body_statements(func)
    scan = Scan(
        module_bindings=direct_bindings(module.body),
        function_bindings=direct_bindings(body),
        module_defines=_module_defines(module),
    )
    captured: set[int] = set()
    for index, stmt in enumerate(body):
        collector = _Collector()
        stmt.visit(collector)
        scan.block_bindings[index] = collector.bindings
        scopes = (collector.bindings, scan.function_bindings, scan.module_bindings)

        def line(node: cst.CSTNode) -> int:
            return positions[node].start.line

        scan.imports += [
            Imported(line(node), imported, name, index)
            for node in collector.imports
            for imported, name in _imported_names(node)
        ]

        for call in collector.calls:
            arch_node, target_node = _register_args(call)
            arch = _string(arch_node) if arch_node is not None else None
            if arch is None or target_node is None:
                continue
            captured.add(id(call))
            scan.archs.append(Found(arch, _target(target_node, scopes, module), line(call), index))
        for assign in collector.assigns:
            if len(assign.targets) != 1:
                continue
            target = assign.targets[0].target
            value = _target(assign.value, scopes, module)
            if isinstance(target, cst.Subscript) and len(target.slice) == 1:
                owner = dotted_name(target.value)
                element = target.slice[0].slice
                table = resolve_in(owner, scopes).split(".")[-1] if owner is not None else None
                if table in (CONFIG_REGISTRY_NAME, HOOKS_MAP_NAME) and isinstance(element, cst.Index):
                    key = _string(element.value)
                    if key is not None:
                        captured.add(id(assign))
                        found = scan.configs if table == CONFIG_REGISTRY_NAME else scan.hooks
                        found.append(Found(key, value, line(assign), index))
            elif isinstance(target, cst.Attribute):
                owner = dotted_name(target.value)
                if owner is None:
                    continue
                # Every ``<module>.<Class> = ...``; only keys naming an override are ever looked up.
                resolved = resolve_in(owner, scopes)
                scan.overrides.append(Found(f"{resolved}.{target.attr.value}", value, line(assign), index))
        scan.patch_calls += [
            name
            for call in collector.called
            if (name := dotted_name(call.func)) is not None
            and resolve_in(name, scopes).startswith(f"{PLUGIN_PACKAGE}.{PATCHES_PACKAGE}.")
        ]
    scan.elsewhere = _elsewhere(module, func, captured, positions)
    scan.log_level = _log_level(body)
    return scan


def body_statements(func: cst.FunctionDef) -> Sequence[cst.BaseStatement]:
    if isinstance(func.body, cst.IndentedBlock):
        return func.body.body
    # ``def register_model(): a(); b()`` - a one-line suite is one statement line
    return [cst.SimpleStatementLine(body=cst.ensure_type(func.body, cst.SimpleStatementSuite).body)]


def _register_args(call: cst.Call) -> tuple[cst.BaseExpression | None, cst.BaseExpression | None]:
    positional = [a.value for a in call.args if a.keyword is None and not a.star]
    keywords = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
    arch = positional[0] if positional else keywords.get("model_arch")
    target = positional[1] if len(positional) > 1 else keywords.get("model_cls")
    return arch, target


def resolve_in(dotted: str, scopes: Sequence[dict[str, str]]) -> str:
    head, _, rest = dotted.partition(".")
    for scope in scopes:
        if head in scope:
            return f"{scope[head]}.{rest}" if rest else scope[head]
    return dotted


def _target(node: cst.BaseExpression, scopes: Sequence[dict[str, str]], module: cst.Module) -> _Target:
    text = _string(node)
    if text is not None:
        mod, sep, cls = text.partition(":")
        return _Target(text, mod, cls) if sep and mod and cls else _Target(repr(text))
    dotted = dotted_name(node)
    if dotted is None:
        return _Target(module.code_for_node(node))
    resolved = resolve_in(dotted, scopes)
    if "." in resolved:
        mod, _, cls = resolved.rpartition(".")
        return _Target(resolved, mod, cls)
    return _Target(resolved, None, resolved)


def contains_register_call(stmt: cst.CSTNode) -> bool:
    collector = _Collector()
    stmt.visit(collector)
    return bool(collector.calls)
