"""Step 5: add a model's entries to ``register_model()`` in ``vllm_fl/__init__.py``.

The plugin registers every model it carries inside ``register_model()`` (its
``vllm.general_plugins`` entry point), one ``try:/except Exception as e:`` block per model so
that one broken model cannot stop the others from registering::

    # Register qwen3_5 model
    try:
        from vllm.transformers_utils.config import _CONFIG_REGISTRY
        from vllm_fl.configs.qwen3_5 import Qwen3_5Config
        _CONFIG_REGISTRY["qwen3_5"] = Qwen3_5Config
        ModelRegistry.register_model(
            "Qwen3_5ForCausalLM",
            "vllm_fl.models.qwen3_5:Qwen3_5ForCausalLM",
        )
    except Exception as e:
        logger.warning("Register qwen3_5 model error: %s", e)

A model that replaces a class the pinned vLLM already has in-tree also assigns the plugin's
class into the in-tree module before registering it (``<module alias>.<Class> = <Class>``).

:func:`plan_registration` is pure: it takes the text of ``__init__.py`` and returns the new text,
adding only what is missing, so a rerun changes nothing. Everything it does not add stays byte
for byte as it was (libcst round-trips the rest of the file). Presence is judged over the whole
of ``register_model()``: an architecture, config or override that any block (or plain statement)
already registers with the same target counts as present, the same one with a different target is
a conflict the user has to resolve. The block a model's missing entries go into is the one whose
leading comment names the model (``# Register <model_name> ...``), else the first block that
already mentions its plugin module, config module or model_type, else a new block at the end of
the function (before a trailing ``return``).

:func:`registered_entries` and :func:`registered_configs` read back what ``register_model()``
registers, for the review step and for idempotence checks.
"""

from __future__ import annotations

import ast
import keyword
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.layout import MODEL_NAME, PLUGIN_PACKAGE, REGISTRATION_FILE
from pytest_flmigrate.patches.syntax import dotted_name

__all__ = [
    "Registration",
    "RegistrationResult",
    "plan_registration",
    "registered_configs",
    "registered_entries",
]

CONFIG_REGISTRY_MODULE = "vllm.transformers_utils.config"
CONFIG_REGISTRY_NAME = "_CONFIG_REGISTRY"
# Where the pinned vLLM exports ModelRegistry (any of these binds the same object).
MODEL_REGISTRY_SOURCES = (
    "vllm.ModelRegistry",
    "vllm.model_executor.models.ModelRegistry",
    "vllm.model_executor.models.registry.ModelRegistry",
)
_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*\Z")
_MODEL_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*\Z")


@dataclass(frozen=True)
class Registration:
    """What step 5 registers for one model (sequences given as lists become tuples).

    model_name:    the unit's upstream module name, e.g. ``"qwen3_5"``; the model's block is identified by it
    plugin_module: the plugin module holding the classes, e.g. ``"vllm_fl.models.qwen3_5"``
    architectures: (architecture name, class name in ``plugin_module``) pairs
    config:        (model_type, config class, plugin config module) when a config bridge exists,
                   e.g. ``("qwen3_5", "Qwen3_5Config", "vllm_fl.configs.qwen3_5")``
    overrides:     (pinned in-tree module, class name) pairs the pinned vLLM already has and the
                   plugin replaces with ``plugin_module.<class name>``, e.g.
                   ``("vllm.model_executor.models.qwen3_next", "Qwen3NextForCausalLM")``
    """

    model_name: str
    plugin_module: str
    architectures: tuple[tuple[str, str], ...]
    config: tuple[str, str, str] | None
    overrides: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "architectures", tuple(tuple(a) for a in self.architectures))
        object.__setattr__(self, "overrides", tuple(tuple(o) for o in self.overrides))
        if self.config is not None:
            object.__setattr__(self, "config", tuple(self.config))
        self._validate()

    def _validate(self) -> None:
        def bad(what: str, value: object, fix: str) -> FlmigrateError:
            return FlmigrateError(
                f"registration for {self.model_name!r}: invalid {what} {value!r}; {fix}"
            )

        if not isinstance(self.model_name, str) or not MODEL_NAME.match(self.model_name):
            raise bad("model name", self.model_name, "use the unit's upstream module name, e.g. qwen3_5")
        if not _is_dotted(self.plugin_module):
            raise bad("plugin module", self.plugin_module, "use a dotted module path")
        seen: dict[str, str] = {}
        for pair in self.architectures:
            if len(pair) != 2 or not all(_is_identifier(p) for p in pair):
                raise bad("architecture", pair, "give (architecture name, class name)")
            arch, cls = pair
            if seen.setdefault(arch, cls) != cls:
                raise bad(
                    "architecture", arch,
                    f"it is listed with two classes ({seen[arch]}, {cls}); keep one",
                )
        if self.config is not None:
            if len(self.config) != 3:
                raise bad("config", self.config, "give (model_type, config class, config module)")
            model_type, cls, module = self.config
            if not isinstance(model_type, str) or not _MODEL_TYPE.match(model_type):
                raise bad("model_type", model_type, "use the model_type of config.json")
            if not _is_identifier(cls):
                raise bad("config class", cls, "use the class name of the config bridge")
            if not _is_dotted(module):
                raise bad("config module", module, "use a dotted module path")
        for pair in self.overrides:
            if len(pair) != 2 or not _is_dotted(pair[0]) or not _is_identifier(pair[1]):
                raise bad("override", pair, "give (pinned in-tree module, class name)")
        if not (self.architectures or self.config or self.overrides):
            raise bad(
                "registration", "(empty)", "give at least one architecture, a config or an override"
            )


@dataclass(frozen=True)
class RegistrationResult:
    """The outcome of :func:`plan_registration`.

    changed: False when everything was already registered (``source`` is then the input itself)
    source:  the new ``__init__.py`` text
    added:   human-readable entries added, e.g. ``"config qwen3_5 -> Qwen3_5Config"``,
             ``"override vllm.model_executor.models.qwen3_next.Qwen3NextForCausalLM"``,
             ``"arch Qwen3_5ForCausalLM"``
    """

    changed: bool
    source: str
    added: tuple[str, ...] = ()


def plan_registration(
    init_source: str, registration: Registration, path: str = REGISTRATION_FILE
) -> RegistrationResult:
    """Return ``init_source`` with ``registration`` added to ``register_model()``.

    Adds only what is missing; raises :class:`FlmigrateError` when the file cannot be parsed,
    has no module-level ``register_model()``, or registers one of the entries to another target.
    """
    module = _parse(init_source, path)
    func = _find_register_model(module, path)
    scan = _scan(module, func)
    reg = registration
    missing = _missing(scan, reg, path)
    if not missing.any():
        return RegistrationResult(changed=False, source=init_source, added=())

    editor = _Editor(module, func, scan, reg)
    new_func = editor.edit(missing.config, missing.overrides, missing.archs)
    source = module.deep_replace(func, new_func).code

    # The result must read back as complete, or a rerun would not be a no-op.
    reparsed = _parse(source, path)
    if _missing(_scan(reparsed, _find_register_model(reparsed, path)), reg, path).any():
        raise FlmigrateError(  # pragma: no cover - a bug in this module, not in the user's file
            f"internal error: the edit of {path} for {reg.model_name} is incomplete; "
            "please report it with the file attached",
            detail=source,
        )

    added: list[str] = []
    if missing.config and reg.config is not None:
        added.append(f"config {reg.config[0]} -> {reg.config[1]}")
    added += [f"override {m}.{c}" for m, c in missing.overrides]
    added += [f"arch {a}" for a, _ in missing.archs]
    return RegistrationResult(changed=True, source=source, added=tuple(added))


def registered_entries(init_source: str, path: str = REGISTRATION_FILE) -> dict[str, str]:
    """Architecture -> ``"module:Class"`` as ``register_model()`` registers them.

    A target given as a class object is resolved through the imports in scope; one that cannot
    be resolved is given as its source text. When an architecture is registered twice the later
    registration wins, as it does at run time.
    """
    module = _parse(init_source, path)
    scan = _scan(module, _find_register_model(module, path))
    return {f.key: str(f.target) for f in scan.archs}


def registered_configs(init_source: str, path: str = REGISTRATION_FILE) -> dict[str, str]:
    """model_type -> ``"module:Class"`` of the ``_CONFIG_REGISTRY`` entries of register_model()."""
    module = _parse(init_source, path)
    scan = _scan(module, _find_register_model(module, path))
    return {f.key: str(f.target) for f in scan.configs}


# --------------------------------------------------------------------------- parsing


def _parse(source: str, path: str) -> cst.Module:
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


def _find_register_model(module: cst.Module, path: str) -> cst.FunctionDef:
    found = [
        s for s in module.body
        if isinstance(s, cst.FunctionDef) and s.name.value == "register_model"
        and s.asynchronous is None
    ]
    if not found:
        raise FlmigrateError(
            f"{path} has no register_model(): add a module-level `def register_model():` "
            "(the vllm.general_plugins entry point, `fl = vllm_fl:register_model` in setup.py) "
            "and rerun"
        )
    return found[-1]  # as at run time, the last definition wins


@dataclass(frozen=True)
class _Missing:
    config: bool
    overrides: tuple[tuple[str, str], ...]
    archs: tuple[tuple[str, str], ...]

    def any(self) -> bool:
        return bool(self.config or self.overrides or self.archs)


def _missing(scan: _Scan, reg: Registration, path: str) -> _Missing:
    """What ``reg`` needs that register_model() lacks; raises on entries with other targets."""
    conflicts: list[str] = []

    def registered(found: list[_Found], key: str, module: str, cls: str, theirs: str, ours: str) -> bool:
        """Whether register_model() has an entry for ``key``; entries pointing elsewhere than
        ``module:cls`` are added to ``conflicts``."""
        hits = [f for f in found if f.key == key]
        conflicts.extend(
            f"{theirs} {f.target} at {path}:{f.line}, this migration {ours} {module}:{cls}"
            for f in hits
            if not f.target.matches(module, cls)
        )
        return bool(hits)

    missing_config = False
    if reg.config is not None:
        model_type, cfg_cls, cfg_mod = reg.config
        missing_config = not registered(
            scan.configs, model_type, cfg_mod, cfg_cls, f"config {model_type!r} is registered to", "registers"
        )
    missing_overrides = [
        (in_tree, cls)
        for in_tree, cls in reg.overrides
        if not registered(
            scan.overrides, f"{in_tree}.{cls}", reg.plugin_module, cls,
            f"{in_tree}.{cls} is overridden with", "overrides it with",
        )
    ]
    missing_archs = [
        (arch, cls)
        for arch, cls in reg.architectures
        if not registered(
            scan.archs, arch, reg.plugin_module, cls, f"architecture {arch} is registered to", "registers"
        )
    ]
    if conflicts:
        raise FlmigrateError(
            f"{conflicts[0]}; remove or rename one of them in register_model() and rerun",
            detail="\n".join(conflicts[1:]),
        )
    return _Missing(missing_config, tuple(missing_overrides), tuple(missing_archs))


def _is_identifier(value: object) -> bool:
    return isinstance(value, str) and value.isidentifier() and not keyword.iskeyword(value)


def _is_dotted(value: object) -> bool:
    return (
        isinstance(value, str) and bool(_DOTTED.match(value))
        and not any(keyword.iskeyword(p) for p in value.split("."))
    )


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
class _Found:
    key: str        # architecture / model_type / "<in-tree module>.<Class>"
    target: _Target
    line: int
    block: int      # index of the register_model() body statement it is in


@dataclass
class _Scan:
    module_bindings: dict[str, str]
    function_bindings: dict[str, str]
    module_defines: set[str]
    archs: list[_Found] = field(default_factory=list)
    configs: list[_Found] = field(default_factory=list)
    overrides: list[_Found] = field(default_factory=list)
    # body index -> names bound by imports anywhere inside that statement
    block_bindings: dict[int, dict[str, str]] = field(default_factory=dict)


def _import_bindings(node: cst.Import | cst.ImportFrom) -> dict[str, str]:
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
    base = dotted_name(node.module) if node.module is not None else ""
    if node.relative:
        parts = PLUGIN_PACKAGE.split(".")
        parts = parts[: max(len(parts) - (len(node.relative) - 1), 0)]
        base = ".".join(p for p in [*parts, base] if p)
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


def _direct_bindings(statements: Iterable[cst.CSTNode]) -> dict[str, str]:
    out: dict[str, str] = {}
    for stmt in statements:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, (cst.Import, cst.ImportFrom)):
                    out.update(_import_bindings(small))
    return out


def _module_defines(module: cst.Module) -> set[str]:
    """Names assigned, defined or imported by direct module-level statements."""
    names: set[str] = set(_direct_bindings(module.body))
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

    # Nested scopes do not run when register_model() runs.
    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_Import(self, node: cst.Import) -> None:
        self.bindings.update(_import_bindings(node))

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        self.bindings.update(_import_bindings(node))

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value == "register_model":
            owner = dotted_name(func.value)
            if owner is not None and owner.split(".")[-1] == "ModelRegistry":
                self.calls.append(node)

    def visit_Assign(self, node: cst.Assign) -> None:
        self.assigns.append(node)


def _scan(module: cst.Module, func: cst.FunctionDef) -> _Scan:
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    body = _body_statements(func)
    scan = _Scan(
        module_bindings=_direct_bindings(module.body),
        function_bindings=_direct_bindings(body),
        module_defines=_module_defines(module),
    )
    for index, stmt in enumerate(body):
        collector = _Collector()
        stmt.visit(collector)
        scan.block_bindings[index] = collector.bindings
        scopes = (collector.bindings, scan.function_bindings, scan.module_bindings)

        def line(node: cst.CSTNode) -> int:
            return positions[node].start.line

        for call in collector.calls:
            arch_node, target_node = _register_args(call)
            arch = _string(arch_node) if arch_node is not None else None
            if arch is None or target_node is None:
                continue
            scan.archs.append(_Found(arch, _target(target_node, scopes, module), line(call), index))
        for assign in collector.assigns:
            if len(assign.targets) != 1:
                continue
            target = assign.targets[0].target
            value = _target(assign.value, scopes, module)
            if isinstance(target, cst.Subscript) and len(target.slice) == 1:
                owner = dotted_name(target.value)
                element = target.slice[0].slice
                if (
                    owner is not None
                    and _resolve(owner, scopes).split(".")[-1] == CONFIG_REGISTRY_NAME
                    and isinstance(element, cst.Index)
                ):
                    model_type = _string(element.value)
                    if model_type is not None:
                        scan.configs.append(_Found(model_type, value, line(assign), index))
            elif isinstance(target, cst.Attribute):
                owner = dotted_name(target.value)
                if owner is None:
                    continue
                # Every ``<module>.<Class> = ...``; only keys naming an override are ever looked up.
                resolved = _resolve(owner, scopes)
                scan.overrides.append(
                    _Found(f"{resolved}.{target.attr.value}", value, line(assign), index)
                )
    return scan


def _body_statements(func: cst.FunctionDef) -> Sequence[cst.BaseStatement]:
    if isinstance(func.body, cst.IndentedBlock):
        return func.body.body
    # ``def register_model(): a(); b()`` - a one-line suite is one statement line
    return [cst.SimpleStatementLine(body=func.body.body)]


def _register_args(call: cst.Call) -> tuple[cst.BaseExpression | None, cst.BaseExpression | None]:
    positional = [a.value for a in call.args if a.keyword is None and not a.star]
    keywords = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
    arch = positional[0] if positional else keywords.get("model_arch")
    target = positional[1] if len(positional) > 1 else keywords.get("model_cls")
    return arch, target


def _resolve(dotted: str, scopes: Sequence[dict[str, str]]) -> str:
    head, _, rest = dotted.partition(".")
    for scope in scopes:
        if head in scope:
            return f"{scope[head]}.{rest}" if rest else scope[head]
    return dotted


def _target(
    node: cst.BaseExpression, scopes: Sequence[dict[str, str]], module: cst.Module
) -> _Target:
    text = _string(node)
    if text is not None:
        mod, sep, cls = text.partition(":")
        return _Target(text, mod, cls) if sep and mod and cls else _Target(repr(text))
    dotted = dotted_name(node)
    if dotted is None:
        return _Target(module.code_for_node(node))
    resolved = _resolve(dotted, scopes)
    if "." in resolved:
        mod, _, cls = resolved.rpartition(".")
        return _Target(resolved, mod, cls)
    return _Target(resolved, None, resolved)


# --------------------------------------------------------------------------- editing


class _Editor:
    """Builds the new register_model() for the missing entries of one registration."""

    def __init__(self, module: cst.Module, func: cst.FunctionDef, scan: _Scan, reg: Registration):
        self.module = module
        self.func = func
        self.scan = scan
        self.reg = reg
        self.unit = module.default_indent

    # -- what is already bound where the new statements go

    def _bound(self, name: str, dotted: str, *extra: dict[str, str]) -> bool:
        return any(
            scope.get(name) == dotted
            for scope in (*extra, self.scan.function_bindings, self.scan.module_bindings)
        )

    def _model_registry_bound(self, *extra: dict[str, str]) -> bool:
        return any(self._bound("ModelRegistry", src, *extra) for src in MODEL_REGISTRY_SOURCES)

    # -- statement texts

    def _register_call(self, arch: str, cls: str, indent: str) -> str:
        """The call, multi-line; ``indent`` is where the statement starts in the parsed text."""
        inner = indent + self.unit
        return (
            "ModelRegistry.register_model(\n"
            f'{inner}"{arch}",\n'
            f'{inner}"{self.reg.plugin_module}:{cls}",\n'
            f"{indent})"
        )

    def _config_lines(self, *extra: dict[str, str]) -> tuple[list[str], list[str]]:
        assert self.reg.config is not None
        model_type, cls, mod = self.reg.config
        imports = []
        registry = f"{CONFIG_REGISTRY_MODULE}.{CONFIG_REGISTRY_NAME}"
        if not self._bound(CONFIG_REGISTRY_NAME, registry, *extra):
            imports.append(f"from {CONFIG_REGISTRY_MODULE} import {CONFIG_REGISTRY_NAME}")
        if not self._bound(cls, f"{mod}.{cls}", *extra):
            imports.append(f"from {mod} import {cls}")
        return imports, [f'{CONFIG_REGISTRY_NAME}["{model_type}"] = {cls}']

    def _override_lines(
        self, overrides: Sequence[tuple[str, str]], *extra: dict[str, str]
    ) -> tuple[list[str], list[str]]:
        imports: list[str] = []
        code: list[str] = []
        for in_tree, cls in overrides:
            alias = f"{in_tree.rpartition('.')[2]}_module"
            if not self._bound(alias, in_tree, *extra):
                imports.append(f"import {in_tree} as {alias}")
            if not self._bound(cls, f"{self.reg.plugin_module}.{cls}", *extra):
                imports.append(f"from {self.reg.plugin_module} import {cls}")
            code.append(f"{alias}.{cls} = {cls}")
        return list(dict.fromkeys(imports)), code

    def _warning_lines(self) -> list[str]:
        message = f'"Register {self.reg.model_name} model error: %s", e'
        if "logger" in self.scan.module_defines:
            return [f"logger.warning({message})"]
        lines = [f"logging.getLogger(__name__).warning({message})"]
        if self.scan.module_bindings.get("logging") != "logging":
            # Only when the module has no top-level `import logging`: a local import of a
            # module-level name would make it local to all of register_model().
            lines.insert(0, "import logging")
        return lines

    def _statement(self, text: str) -> cst.BaseStatement:
        return cst.parse_statement(text + "\n", config=self.module.config_for_parsing)

    # -- the edit

    def edit(
        self,
        missing_config: bool,
        missing_overrides: Sequence[tuple[str, str]],
        missing_archs: Sequence[tuple[str, str]],
    ) -> cst.FunctionDef:
        index = self._own_block()
        if index is None:
            return self._append_block(missing_config, missing_overrides, missing_archs)
        return self._complete_block(index, missing_config, missing_overrides, missing_archs)

    def _own_block(self) -> int | None:
        """Index of the try block that belongs to this model, if there is one."""
        body = _body_statements(self.func)
        name = re.escape(self.reg.model_name)
        marker = re.compile(rf"#\s*Register\b.*(?<![\w.]){name}(?![\w])", re.IGNORECASE)
        tries = [
            (i, s) for i, s in enumerate(body)
            if isinstance(s, cst.Try) and isinstance(s.body, cst.IndentedBlock)
        ]
        for i, stmt in tries:
            if any(ln.comment and marker.search(ln.comment.value) for ln in stmt.leading_lines):
                return i
        modules = {self.reg.plugin_module}
        model_type = None
        if self.reg.config is not None:
            modules.add(self.reg.config[2])
            model_type = self.reg.config[0]
        for i, _stmt in tries:
            archs = (f for f in self.scan.archs if f.block == i)
            if any(f.target.module == self.reg.plugin_module for f in archs):
                return i
        for i, _stmt in tries:
            bound = self.scan.block_bindings.get(i, {}).values()
            if any(b in modules or b.rpartition(".")[0] in modules for b in bound) or any(
                f.block == i and f.key == model_type for f in self.scan.configs
            ):
                return i
        return None

    def _append_block(
        self,
        missing_config: bool,
        missing_overrides: Sequence[tuple[str, str]],
        missing_archs: Sequence[tuple[str, str]],
    ) -> cst.FunctionDef:
        imports: list[str] = []
        code: list[str] = []
        if missing_archs and not self._model_registry_bound():
            imports.append("from vllm import ModelRegistry")
        if missing_config:
            more, lines = self._config_lines()
            imports += more
            code += lines
        more, lines = self._override_lines(missing_overrides)
        imports += more
        code += lines
        # Continuation lines are written relative to the statement: libcst re-indents them.
        code += [self._register_call(arch, cls, self.unit) for arch, cls in missing_archs]

        nl = "\n"
        text = "try:" + nl
        text += "".join(f"{self.unit}{line}{nl}" for line in [*imports, *code])
        text += "except Exception as e:" + nl
        text += "".join(f"{self.unit}{line}{nl}" for line in self._warning_lines())
        block = cst.parse_statement(text, config=self.module.config_for_parsing)

        body = list(_body_statements(self.func))
        header = self.func.body.header if isinstance(self.func.body, cst.IndentedBlock) else (
            self.func.body.trailing_whitespace
        )
        footer = self.func.body.footer if isinstance(self.func.body, cst.IndentedBlock) else ()
        indent = self.func.body.indent if isinstance(self.func.body, cst.IndentedBlock) else None
        body = self._drop_lone_pass(body)
        position = len(body)
        if body and _is_return(body[-1]):
            position -= 1
        leading = [cst.EmptyLine(indent=False)] if position > 0 else []
        marker = cst.Comment(f"# Register {self.reg.model_name} model")
        leading.append(cst.EmptyLine(comment=marker))
        block = block.with_changes(leading_lines=leading)
        body.insert(position, block)
        new_body = cst.IndentedBlock(body=body, header=header, indent=indent, footer=footer)
        return self.func.with_changes(body=new_body)

    @staticmethod
    def _drop_lone_pass(body: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
        """Drop a placeholder ``pass`` (without comments) that is the function's only statement."""
        rest = body[1:] if body and _is_docstring(body[0]) else body
        if len(rest) != 1:
            return body
        stmt = rest[0]
        if (
            isinstance(stmt, cst.SimpleStatementLine)
            and len(stmt.body) == 1
            and isinstance(stmt.body[0], cst.Pass)
            and not any(ln.comment for ln in stmt.leading_lines)
            and stmt.trailing_whitespace.comment is None
        ):
            return [s for s in body if s is not stmt]
        return body

    def _complete_block(
        self,
        index: int,
        missing_config: bool,
        missing_overrides: Sequence[tuple[str, str]],
        missing_archs: Sequence[tuple[str, str]],
    ) -> cst.FunctionDef:
        assert isinstance(self.func.body, cst.IndentedBlock)
        block = self.func.body.body[index]
        assert isinstance(block, cst.Try) and isinstance(block.body, cst.IndentedBlock)
        own = _direct_bindings(block.body.body)
        statements = list(block.body.body)

        head: list[str] = []
        if missing_config:
            imports, code = self._config_lines(own)
            head = imports + code
        imports, code = self._override_lines(missing_overrides, own)
        middle = imports + code
        tail = [self._register_call(arch, cls, "") for arch, cls in missing_archs]
        if tail and not self._model_registry_bound(own):
            tail.insert(0, "from vllm import ModelRegistry")

        first_call = next(
            (i for i, s in enumerate(statements) if _contains_register_call(s)), len(statements)
        )
        new_statements = [
            *[self._statement(t) for t in head],
            *statements[:first_call],
            *[self._statement(t) for t in middle],
            *statements[first_call:],
            *[self._statement(t) for t in tail],
        ]
        new_block = block.with_changes(body=block.body.with_changes(body=new_statements))
        body = list(self.func.body.body)
        body[index] = new_block
        return self.func.with_changes(body=self.func.body.with_changes(body=body))


def _is_docstring(stmt: cst.BaseStatement) -> bool:
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Expr)
        and isinstance(stmt.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def _is_return(stmt: cst.BaseStatement) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and any(
        isinstance(s, cst.Return) for s in stmt.body
    )


def _contains_register_call(stmt: cst.CSTNode) -> bool:
    collector = _Collector()
    stmt.visit(collector)
    return bool(collector.calls)
