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

The plugin's shapes over time: a platform plugin only (no ``register_model()``: step 5 says what to
add), one ``try`` block per model (0.13-era), and ``register_model()`` calling patch functions of
``vllm_fl/patches/<topic>.py`` first (with vendor branches that may return early), then ``try``
blocks registering configs into vLLM's ``_CONFIG_REGISTRY`` and models. Both known shapes keep
their entries in ``try`` blocks after everything else; the new block logs at the level the
others do. A plugin that registers models anywhere else (another function, at import time, from
a table or a loop) is a shape step 5 does not know: it fails with one line and writes nothing.

:func:`plan_registration` is pure: it takes the text of ``__init__.py`` and returns the new text,
adding only what is missing, so a rerun changes nothing. Everything it does not add stays byte
for byte as it was (libcst round-trips the rest of the file). Presence is judged over the whole
of ``register_model()``: an architecture, config or override that any block (or plain statement)
already registers with the same target counts as present, the same one with a different target is
a conflict the user has to resolve. The block a model's missing entries go into is the one whose
leading comment names the model (``# Register <model_name> ...``), else the first block that
already mentions its plugin module, config module or model_type, else a new block at the end of
the function (before a top-level ``return``).

Reading what ``register_model()`` registers (parsing, scanning, comparing) is registrations.py's.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import libcst as cst

from pytest_flmigrate.errors import FlmigrateError
from pytest_flmigrate.layout import MODEL_NAME, REGISTRATION_FILE
from pytest_flmigrate.patches.syntax import dotted_name
from pytest_flmigrate.steps.registrations import (
    CONFIG_REGISTRY_NAME,
    HOOKS_MAP_NAME,
    Found,
    Scan,
    body_statements,
    contains_register_call,
    direct_bindings,
    find_register_model,
    import_bindings,
    parse_init,
    resolve_in,
    scan_register_model,
)

__all__ = [
    "SHAPE_PATCH_CALLS",
    "SHAPE_TRY_BLOCKS",
    "Registration",
    "RegistrationResult",
    "plan_registration",
]

#: The shapes of register_model() step 5 edits; both keep one ``try:`` block per model, the new one
#: goes after the last statement (before a top-level ``return``).
SHAPE_TRY_BLOCKS = "one try block per model"  # the 0.13-era plugin (and an empty register_model())
SHAPE_PATCH_CALLS = "patch calls, then try blocks"  # calls vllm_fl/patches/<topic>.py functions first
CONFIG_REGISTRY_MODULE = "vllm.transformers_utils.config"
HOOKS_MODULE = "vllm.model_executor.models.config"  # where the pinned vLLM keeps MODELS_CONFIG_MAP
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
    hooks:         (architecture, hook class, module) of upstream's config hooks step 4 copied,
                   registered in the pin's ``MODELS_CONFIG_MAP``, e.g. ``("VoyageQwen3BidirectionalEmbedModel",
                   "VoyageQwen3BidirectionalEmbedModelConfig", "vllm_fl.compat.model_executor.models.config")``
    """

    model_name: str
    plugin_module: str
    architectures: tuple[tuple[str, str], ...]
    config: tuple[str, str, str] | None
    overrides: tuple[tuple[str, str], ...] = ()
    hooks: tuple[tuple[str, str, str], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "architectures", tuple(tuple(a) for a in self.architectures))
        object.__setattr__(self, "overrides", tuple(tuple(o) for o in self.overrides))
        object.__setattr__(self, "hooks", tuple(tuple(h) for h in self.hooks))
        if self.config is not None:
            object.__setattr__(self, "config", tuple(self.config))
        self._validate()

    def keys(self) -> tuple[str, ...]:
        """What register_model() registers for it: architectures, the config's model_type and
        ``<in-tree module>.<Class>`` of each override (the keys of registrations.Found)."""
        config = (self.config[0],) if self.config else ()
        return (*(arch for arch, _ in self.architectures), *config, *(f"{m}.{c}" for m, c in self.overrides))

    def _validate(self) -> None:
        def bad(what: str, value: object, fix: str) -> FlmigrateError:
            return FlmigrateError(f"registration for {self.model_name!r}: invalid {what} {value!r}; {fix}")

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
                    "architecture",
                    arch,
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
        for hook in self.hooks:
            if len(hook) != 3 or not _is_identifier(hook[0]) or not _is_identifier(hook[1]) or not _is_dotted(hook[2]):
                raise bad("config hook", hook, "give (architecture, hook class, module)")
        if not (self.architectures or self.config or self.overrides):
            raise bad("registration", "(empty)", "give at least one architecture, a config or an override")


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
    # how register_model() keeps its entries (SHAPE_TRY_BLOCKS or SHAPE_PATCH_CALLS): a fact of the
    # file, not of the edit
    shape: str = field(default="", compare=False)
    # statements removed because they import or register a module step 4 dropped
    removed: tuple[str, ...] = ()


def plan_registration(
    init_source: str,
    registration: Registration,
    path: str = REGISTRATION_FILE,
    dropped: frozenset[str] = frozenset(),
) -> RegistrationResult:
    """Return ``init_source`` with ``registration`` added to ``register_model()``.

    Adds only what is missing; raises :class:`FlmigrateError` when the file cannot be parsed,
    has no module-level ``register_model()``, or registers one of the entries to another target.
    ``dropped``: plugin modules step 4 removed (a config bridge a new pin does not need): the
    statements of register_model() importing or registering them go too (a ``try`` block left
    empty with them).
    """
    module = parse_init(init_source, path)
    func = find_register_model(module, path)
    scan = scan_register_model(module, func)
    reg = registration
    removed: tuple[str, ...] = ()
    if dropped and not scan.elsewhere:
        edited, removed = _without(module, func, scan, dropped)
        if removed:
            module = edited
            func = find_register_model(module, path)
            scan = scan_register_model(module, func)
    if scan.elsewhere:
        line, where = scan.elsewhere[0]
        raise FlmigrateError(
            f"{path}:{line}: this plugin registers models {where}, a register_model() shape step 5 does not "
            f"know; nothing was written. Register {', '.join(_entries(reg))} there by hand",
            detail="\n".join(f"{path}:{n}: registers {w}" for n, w in scan.elsewhere),
        )
    shape = SHAPE_PATCH_CALLS if scan.patch_calls else SHAPE_TRY_BLOCKS
    missing = _missing(scan, reg, path)
    if not missing.any():
        if removed:
            return RegistrationResult(changed=True, source=module.code, shape=shape, removed=removed)
        return RegistrationResult(changed=False, source=init_source, added=(), shape=shape)

    editor = _Editor(module, func, scan, reg)
    new_func = editor.edit(missing.config, missing.overrides, missing.archs, missing.hooks)
    source = cst.ensure_type(module.deep_replace(func, new_func), cst.Module).code

    # The result must read back as complete, or a rerun would not be a no-op.
    reparsed = parse_init(source, path)
    if _missing(scan_register_model(reparsed, find_register_model(reparsed, path)), reg, path).any():
        raise FlmigrateError(  # pragma: no cover - a bug in this module, not in the user's file
            f"internal error: the edit of {path} for {reg.model_name} is incomplete; "
            "please report it with the file attached",
            detail=source,
        )

    added: list[str] = []
    if missing.config and reg.config is not None:
        added.append(f"config {reg.config[0]} -> {reg.config[1]}")
    added += [f"override {m}.{c}" for m, c in missing.overrides]
    added += [f"config hook {a} -> {c}" for a, c, _ in missing.hooks]
    added += [f"arch {a}" for a, _ in missing.archs]
    return RegistrationResult(changed=True, source=source, added=tuple(added), shape=shape, removed=removed)


def _without(
    module: cst.Module, func: cst.FunctionDef, scan: Scan, dropped: frozenset[str]
) -> tuple[cst.Module, tuple[str, ...]]:
    """``module`` without the statements of register_model() that import or register one of the
    ``dropped`` modules (and an import of ``_CONFIG_REGISTRY`` their block no longer uses); what
    was removed, as the statements read."""

    def gone(dotted: str) -> bool:
        return any(dotted == m or dotted.startswith(m + ".") for m in dropped)

    def stale(statement: cst.BaseStatement, scopes: Sequence[dict[str, str]]) -> bool:
        smalls = statement.body if isinstance(statement, cst.SimpleStatementLine) else ()
        return bool(smalls) and all(_refers_to(small, scopes, gone) for small in smalls)

    removed: list[str] = []
    new_body: list[cst.BaseStatement] = []
    for index, statement in enumerate(body_statements(func)):
        scopes = (scan.block_bindings.get(index, {}), scan.function_bindings, scan.module_bindings)
        if not (isinstance(statement, cst.Try) and isinstance(statement.body, cst.IndentedBlock)):
            if stale(statement, scopes):
                removed.append(module.code_for_node(statement).strip())
            else:
                new_body.append(statement)
            continue
        inner = statement.body.body
        going = {id(s) for s in inner if stale(s, scopes)}
        if going and not _uses_registry([s for s in inner if id(s) not in going]):
            going |= {id(s) for s in inner if _in_import(s) and CONFIG_REGISTRY_NAME in direct_bindings([s])}
        removed += [module.code_for_node(s).strip() for s in inner if id(s) in going]
        kept = [s for s in inner if id(s) not in going]
        if kept:  # a block left with nothing to try goes with its statements
            new_body.append(statement.with_changes(body=statement.body.with_changes(body=kept)))
    if not removed or not isinstance(func.body, cst.IndentedBlock):
        return module, ()
    new_func = func.with_changes(body=func.body.with_changes(body=new_body))
    return cst.ensure_type(module.deep_replace(func, new_func), cst.Module), tuple(removed)


def _refers_to(small: cst.BaseSmallStatement, scopes: Sequence[dict[str, str]], gone) -> bool:
    """An import of dropped modules only, or an assignment of a name bound to one."""
    if isinstance(small, (cst.Import, cst.ImportFrom)):
        bound = import_bindings(small)
        return bool(bound) and all(gone(target) for target in bound.values())
    if isinstance(small, cst.Assign) and len(small.targets) == 1:
        value = dotted_name(small.value)
        return value is not None and gone(resolve_in(value, scopes))
    return False


def _uses_registry(statements: list[cst.BaseStatement]) -> bool:
    """Whether ``statements`` use ``_CONFIG_REGISTRY`` other than by importing it."""
    return any(
        isinstance(node, cst.Name) and node.value == CONFIG_REGISTRY_NAME
        for statement in statements
        if not _in_import(statement)
        for node in _names(statement)
    )


def _in_import(statement: cst.BaseStatement) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and all(
        isinstance(small, (cst.Import, cst.ImportFrom)) for small in statement.body
    )


def _names(node: cst.CSTNode) -> list[cst.Name]:
    found: list[cst.Name] = []

    class Collect(cst.CSTVisitor):
        def visit_Name(self, name: cst.Name) -> None:
            found.append(name)

    node.visit(Collect())
    return found


def _entries(reg: Registration) -> list[str]:
    """What ``reg`` registers, as the statements would read."""
    config = [f'_CONFIG_REGISTRY["{reg.config[0]}"] = {reg.config[2]}.{reg.config[1]}'] if reg.config else []
    overrides = [f"{module}.{cls} = {reg.plugin_module}.{cls}" for module, cls in reg.overrides]
    hooks = [f'{HOOKS_MAP_NAME}["{arch}"] = {module}.{cls}' for arch, cls, module in reg.hooks]
    archs = [f'ModelRegistry.register_model("{arch}", "{reg.plugin_module}:{cls}")' for arch, cls in reg.architectures]
    return config + overrides + hooks + archs


@dataclass(frozen=True)
class _Missing:
    config: bool
    overrides: tuple[tuple[str, str], ...]
    archs: tuple[tuple[str, str], ...]
    hooks: tuple[tuple[str, str, str], ...] = ()

    def any(self) -> bool:
        return bool(self.config or self.overrides or self.archs or self.hooks)


def _missing(scan: Scan, reg: Registration, path: str) -> _Missing:
    """What ``reg`` needs that register_model() lacks; raises on entries with other targets."""
    conflicts: list[str] = []

    def registered(found: list[Found], key: str, module: str, cls: str, theirs: str, ours: str) -> bool:
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
            scan.overrides,
            f"{in_tree}.{cls}",
            reg.plugin_module,
            cls,
            f"{in_tree}.{cls} is overridden with",
            "overrides it with",
        )
    ]
    missing_archs = [
        (arch, cls)
        for arch, cls in reg.architectures
        if not registered(
            scan.archs, arch, reg.plugin_module, cls, f"architecture {arch} is registered to", "registers"
        )
    ]
    missing_hooks = [
        (arch, cls, module)
        for arch, cls, module in reg.hooks
        if not registered(scan.hooks, arch, module, cls, f"the config hook of {arch} is", "registers")
    ]
    if conflicts:
        raise FlmigrateError(
            f"{conflicts[0]}; remove or rename one of them in register_model() and rerun",
            detail="\n".join(conflicts[1:]),
        )
    return _Missing(missing_config, tuple(missing_overrides), tuple(missing_archs), tuple(missing_hooks))


def _is_identifier(value: object) -> bool:
    return isinstance(value, str) and value.isidentifier() and not keyword.iskeyword(value)


def _is_dotted(value: object) -> bool:
    return (
        isinstance(value, str)
        and bool(_DOTTED.match(value))
        and not any(keyword.iskeyword(p) for p in value.split("."))
    )


# --------------------------------------------------------------------------- editing


class _Editor:
    """Builds the new register_model() for the missing entries of one registration."""

    def __init__(self, module: cst.Module, func: cst.FunctionDef, scan: Scan, reg: Registration):
        self.module = module
        self.func = func
        self.scan = scan
        self.reg = reg
        self.unit = module.default_indent

    # -- what is already bound where the new statements go

    def _bound(self, name: str, dotted: str, *extra: dict[str, str]) -> bool:
        return any(
            scope.get(name) == dotted for scope in (*extra, self.scan.function_bindings, self.scan.module_bindings)
        )

    def _model_registry_bound(self, *extra: dict[str, str]) -> bool:
        return any(self._bound("ModelRegistry", src, *extra) for src in MODEL_REGISTRY_SOURCES)

    # -- statement texts

    def _register_call(self, arch: str, cls: str, indent: str) -> str:
        """The call, multi-line; ``indent`` is where the statement starts in the parsed text."""
        inner = indent + self.unit
        return f'ModelRegistry.register_model(\n{inner}"{arch}",\n{inner}"{self.reg.plugin_module}:{cls}",\n{indent})'

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

    def _hook_lines(self, hooks: Sequence[tuple[str, str, str]], *extra: dict[str, str]) -> tuple[list[str], list[str]]:
        imports: list[str] = []
        if hooks and not self._bound(HOOKS_MAP_NAME, f"{HOOKS_MODULE}.{HOOKS_MAP_NAME}", *extra):
            imports.append(f"from {HOOKS_MODULE} import {HOOKS_MAP_NAME}")
        code: list[str] = []
        for arch, cls, module in hooks:
            if not self._bound(cls, f"{module}.{cls}", *extra):
                imports.append(f"from {module} import {cls}")
            code.append(f'{HOOKS_MAP_NAME}["{arch}"] = {cls}')
        return list(dict.fromkeys(imports)), code

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
        """The except clause's logging, at the level the function's other blocks log at."""
        message = f'"Register {self.reg.model_name} model error: %s", e'
        level = self.scan.log_level or "warning"
        if "logger" in self.scan.module_defines:
            return [f"logger.{level}({message})"]
        lines = [f"logging.getLogger(__name__).{level}({message})"]
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
        missing_hooks: Sequence[tuple[str, str, str]] = (),
    ) -> cst.FunctionDef:
        index = self._own_block()
        if index is None:
            return self._append_block(missing_config, missing_overrides, missing_archs, missing_hooks)
        return self._complete_block(index, missing_config, missing_overrides, missing_archs, missing_hooks)

    def _own_block(self) -> int | None:
        """Index of the try block that belongs to this model, if there is one."""
        body = body_statements(self.func)
        name = re.escape(self.reg.model_name)
        marker = re.compile(rf"#\s*Register\b.*(?<![\w.]){name}(?![\w])", re.IGNORECASE)
        tries = [(i, s) for i, s in enumerate(body) if isinstance(s, cst.Try) and isinstance(s.body, cst.IndentedBlock)]
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
        missing_hooks: Sequence[tuple[str, str, str]] = (),
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
        more, lines = self._hook_lines(missing_hooks)
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

        body = list(body_statements(self.func))
        suite = self.func.body
        header = (
            suite.header
            if isinstance(suite, cst.IndentedBlock)
            else (cst.ensure_type(suite, cst.SimpleStatementSuite).trailing_whitespace)
        )
        footer = suite.footer if isinstance(suite, cst.IndentedBlock) else ()
        indent = self.func.body.indent if isinstance(self.func.body, cst.IndentedBlock) else None
        body = self._drop_lone_pass(body)
        # before the first top-level return: what follows it never runs
        position = next((i for i, stmt in enumerate(body) if _is_return(stmt)), len(body))
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
        missing_hooks: Sequence[tuple[str, str, str]] = (),
    ) -> cst.FunctionDef:
        assert isinstance(self.func.body, cst.IndentedBlock)
        block = self.func.body.body[index]
        assert isinstance(block, cst.Try) and isinstance(block.body, cst.IndentedBlock)
        own = direct_bindings(block.body.body)
        statements = list(block.body.body)

        head: list[str] = []
        if missing_config:
            imports, code = self._config_lines(own)
            head = imports + code
        imports, code = self._override_lines(missing_overrides, own)
        middle = imports + code
        imports, code = self._hook_lines(missing_hooks, own)
        middle += imports + code
        tail = [self._register_call(arch, cls, "") for arch, cls in missing_archs]
        if tail and not self._model_registry_bound(own):
            tail.insert(0, "from vllm import ModelRegistry")

        first_call = next((i for i, s in enumerate(statements) if contains_register_call(s)), len(statements))
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
    return isinstance(stmt, cst.SimpleStatementLine) and any(isinstance(s, cst.Return) for s in stmt.body)
