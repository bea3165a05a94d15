"""Config bridge consistency: the bridge class exists, subclasses the pinned PretrainedConfig,
declares the unit's model_type and an ``__init__``; every config field the model reads exists
in the config classes (bridge or pinned) and has a default."""

from __future__ import annotations

import ast
from collections.abc import Container, Iterator
from functools import cached_property

from pytest_flmigrate.index.records import POSITIONAL_ONLY, VAR_KEYWORD, VAR_POSITIONAL, ClassInfo
from pytest_flmigrate.index.resolve import Resolver
from pytest_flmigrate.index.symbols import parse_source
from pytest_flmigrate.layout import PLUGIN_PACKAGE
from pytest_flmigrate.patches import p14_transformers_renames
from pytest_flmigrate.review.base import FileView, Finding, ReviewContext, check, manual
from pytest_flmigrate.review.patch_ids import fix_for

CHECK = "config-bridge"
PRETRAINED = ("PretrainedConfig", "PreTrainedConfig")
# Expressions that hold a HF config in vLLM model code.
CONFIG_NAMES = {
    "config",
    "hf_config",
    "text_config",
    "hf_text_config",
    "vision_config",
    "audio_config",
    "thinker_config",
}
# Fields the pinned vLLM sets on every HF config it loads, built from other fields: field ->
# (the pinned function setting it, the fields it is built from; one of them must be provided).
SET_AT_LOAD: dict[str, tuple[tuple[str, str], frozenset[str]]] = {
    # transformers 4 configs keep rope_scaling / rope_theta; vLLM's loader folds them into
    # rope_parameters, which the model code of newer vLLMs reads
    "rope_parameters": (
        ("vllm.transformers_utils.config", "patch_rope_parameters"),
        frozenset({"rope_scaling", "rope_theta", "rotary_emb_base", "partial_rotary_factor", "rotary_pct"}),
    ),
}


def class_node(resolver: Resolver, module: str, name: str) -> ast.ClassDef | None:
    """The ClassDef of ``module.name`` read from its source file."""
    index = resolver.index_for(module)
    info = resolver.module(module)
    if index is None or info is None or name not in info.classes:
        return None
    try:
        tree = parse_source((index.root / info.path).read_bytes(), info.path)
    except OSError:
        return None
    for node in ast.walk(tree) if tree else ():
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    return None


def _class_literal(node: ast.ClassDef, attribute: str):
    for statement in node.body:
        targets: list[ast.expr]
        value: ast.expr | None
        if isinstance(statement, ast.Assign):
            targets, value = statement.targets, statement.value
        elif isinstance(statement, ast.AnnAssign):
            targets, value = [statement.target], statement.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == attribute for t in targets) and value is not None:
            try:
                return ast.literal_eval(value)
            except (ValueError, SyntaxError, TypeError):
                return value
    return None


class ConfigFields:
    """What a set of config classes provides: attribute names, and __init__ parameters without default."""

    def __init__(self, resolver: Resolver, classes: list[tuple[str, str]]) -> None:
        self.resolver = resolver
        self.classes = classes

    @cached_property
    def provided(self) -> set[str]:
        names: set[str] = set()
        # what every config has from the pinned PretrainedConfig (a bridge whose base does not
        # resolve is reported on its own; its fields are still judged against it)
        base = self.resolver.resolve("transformers", "PretrainedConfig")
        if base is not None and base.kind == "class":
            names |= self.resolver.members(base.module, base.name)
        for module, name in self.classes:
            names |= self.resolver.members(module, name)
            for _, cls in self.resolver.mro(module, name).classes:
                init = cls.methods.get("__init__")
                if init is not None:
                    names |= {p.name for p in init.params if p.kind not in (VAR_POSITIONAL, VAR_KEYWORD)}
            node = class_node(self.resolver, module, name)
            mapping = _class_literal(node, "attribute_map") if node is not None else None
            if isinstance(mapping, dict):
                names |= {k for k in mapping if isinstance(k, str)}
        return names | {
            name
            for name, (setter, sources) in SET_AT_LOAD.items()
            if names & sources and self.resolver.function_of(self.resolver.resolve(*setter)) is not None
        }

    @cached_property
    def without_default(self) -> dict[str, str]:
        """__init__ parameter -> class, for parameters a config.json must always give."""
        found = {}
        for module, name in self.classes:
            cls = _classes(self.resolver, module)[name]
            init = cls.methods.get("__init__")
            for param in init.params[1:] if init else ():
                if not param.has_default and param.kind not in (VAR_POSITIONAL, VAR_KEYWORD, POSITIONAL_ONLY):
                    found[param.name] = name
            if init is None and cls.is_dataclass:
                for item in cls.fields:
                    if not item.has_default and item.init:
                        found[item.name] = name
        return found


def _bridge_classes(context: ReviewContext) -> list[tuple[str, str]]:
    """(module, class) of every config class the migration writes (the bridge and the config
    modules it pulls in), or of the pinned config module when there is no bridge."""
    resolver = context.resolver
    if context.bridge is not None:
        _, class_name, bridge = context.bridge
        others = [
            (f.module, name)
            for f in context.config_files
            if f.module != bridge
            for name in _classes(resolver, f.module)
        ]
        if not bridge.startswith(f"{PLUGIN_PACKAGE}.configs."):  # a config class in model code: that class alone
            return [(bridge, class_name), *others]
        return [(bridge, name) for name in _classes(resolver, bridge)] + others
    if not context.config_class:
        return []
    located = [
        s for s in resolver.locate(context.config_class) if not s.module.startswith("vllm_fl") and s.kind == "class"
    ]
    if not located:
        return []
    module = located[0].module
    return [(module, name) for name in _classes(resolver, module)]


def _classes(resolver: Resolver, module: str) -> dict[str, ClassInfo]:
    info = resolver.module(module)
    return info.classes if info is not None else {}


def _is_pretrained(resolver: Resolver, module: str, name: str) -> tuple[bool, str]:
    mro = resolver.mro(module, name)
    for entry in mro.entries:
        if isinstance(entry, str):
            if entry.rpartition(".")[2].rpartition(":")[2] in PRETRAINED:
                return False, entry
            continue
        owner, cls = entry
        if cls.name in PRETRAINED and owner.startswith("transformers"):
            return True, f"{owner}.{cls.name}"
    return False, ", ".join(mro.external) or "no PretrainedConfig base"


@check(CHECK, roles=frozenset({"model", "sibling", "config"}))
def config_bridge(context: ReviewContext, view: FileView) -> list[Finding]:
    """the config bridge is a PretrainedConfig subclass with the right model_type, and every config field the model reads exists with a default"""
    bridged = context.bridge is not None and view.module == context.bridge[2]
    if view.file.role == "config":
        return _bridge_file(context, view) if bridged else []
    # a config class defined in model code is registered from the migrated model module itself
    return (_bridge_file(context, view) if bridged else []) + _model_reads(context, view)


def _bridge_file(context: ReviewContext, view: FileView) -> list[Finding]:
    assert context.bridge is not None, "only the bridge file is checked here"
    model_type, class_name, module = context.bridge
    resolver = context.resolver
    info = resolver.module(module)
    findings = []
    if info is None or class_name not in info.classes:
        return [
            view.finding(
                CHECK,
                1,
                class_name,
                f"the bridge {module} does not define {class_name}",
                manual(f"define {class_name} in {view.target}"),
            )
        ]
    cls: ClassInfo = info.classes[class_name]
    ok, base = _is_pretrained(resolver, module, class_name)
    if not ok:
        fix = (
            fix_for(context, p14_transformers_renames.NAME, "subclass transformers.PretrainedConfig")
            if "PreTrainedConfig" in base
            else manual("subclass transformers.PretrainedConfig")
        )
        findings.append(
            view.finding(
                CHECK,
                cls.line,
                class_name,
                f"not a PretrainedConfig subclass in the pinned transformers (base: {base})",
                fix,
            )
        )
    node = next((n for n in view.tree.body if isinstance(n, ast.ClassDef) and n.name == class_name), None)
    declared = _class_literal(node, "model_type") if node is not None else None
    if declared != model_type:
        findings.append(
            view.finding(
                CHECK,
                cls.line,
                f"{class_name}.model_type",
                f"model_type is {declared!r}, the checkpoint's is {model_type!r}",
                manual(f'set model_type = "{model_type}" on {class_name}'),
            )
        )
    if "__init__" not in cls.methods:
        findings.append(
            view.finding(
                CHECK,
                cls.line,
                f"{class_name}.__init__",
                "no __init__: transformers 4.x configs set their fields in __init__ (class-level "
                "annotations alone are not read from config.json)",
                manual(f"give {class_name} an __init__(self, <field>=<default>, ..., **kwargs)"),
            )
        )
    return findings


def _holds_config(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in CONFIG_NAMES
    if isinstance(node, ast.Attribute):
        return node.attr in CONFIG_NAMES
    return False


# Methods that turn a config into a plain dict, and copies that keep a dict one.
_TO_DICT = frozenset({"to_dict", "to_diff_dict"})
_COPIES = frozenset({"copy", "deepcopy"})


def _is_dict(value: ast.expr) -> bool:
    """``x.to_dict()``, ``dict(...)``, ``{...}``, ``copy.deepcopy(<one of these>)``: a dict, not a config."""
    if isinstance(value, (ast.Dict, ast.DictComp)):
        return True
    if not isinstance(value, ast.Call):
        return False
    func = value.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if (isinstance(func, ast.Attribute) and name in _TO_DICT) or name == "dict":
        return True
    return name in _COPIES and len(value.args) == 1 and _is_dict(value.args[0])


def _dict_reads(view: FileView) -> set[int]:
    """ids of the ``Name`` loads that read a dict, not a config: the name's last binding before the
    read, in the same function, is a dict (``text_config = config.text_config.to_dict()``, then
    ``text_config.pop(key)``)."""
    scopes: dict[ast.AST | None, dict[str, list[tuple[tuple[int, int], bool]]]] = {}
    for assign in view.nodes(ast.Assign):
        for target in assign.targets:
            if isinstance(target, ast.Name) and target.id in CONFIG_NAMES:
                end = (assign.end_lineno or assign.lineno, assign.end_col_offset or 0)
                names = scopes.setdefault(view.enclosing_function(assign), {})
                names.setdefault(target.id, []).append((end, _is_dict(assign.value)))
    found: set[int] = set()
    for name in view.nodes(ast.Name):
        bindings = scopes.get(view.enclosing_function(name), {}).get(name.id)
        if not bindings or not isinstance(name.ctx, ast.Load):
            continue
        before = [is_dict for end, is_dict in sorted(bindings) if end <= (name.lineno, name.col_offset)]
        if before and before[-1]:
            found.add(id(name))
    return found


def _config_read_nodes(view: FileView) -> Iterator[tuple[str, ast.AST]]:
    """(attribute, node) of every config read of the file: ``config.X``, ``getattr(config, "X")``
    (a name bound to a dict made from a config is a dict: its methods are not config fields)."""
    dicts = _dict_reads(view)
    for node in ast.walk(view.tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load) and _holds_config(node.value):
            if id(node.value) not in dicts:
                yield node.attr, node
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) == 2
            and not node.keywords
            and _holds_config(node.args[0])
            and id(node.args[0]) not in dicts
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            yield node.args[1].value, node


def _config_reads(view: FileView) -> dict[str, int]:
    """Config attributes the file reads (first line each)."""
    reads: dict[str, int] = {}
    for name, node in _config_read_nodes(view):
        reads.setdefault(name, node.lineno)  # type: ignore[attr-defined]
    return reads


def _gate(test: ast.expr) -> str | None:
    """X when an ``if`` test holds only for a config that has X: ``hasattr(config, "X")``,
    ``getattr(config, "X", <falsy constant>)``."""
    if not (
        isinstance(test, ast.Call)
        and isinstance(test.func, ast.Name)
        and len(test.args) >= 2
        and not test.keywords
        and _holds_config(test.args[0])
        and isinstance(test.args[1], ast.Constant)
        and isinstance(test.args[1].value, str)
    ):
        return None
    if test.func.id == "hasattr" and len(test.args) == 2:
        return test.args[1].value
    if test.func.id == "getattr" and len(test.args) == 3:
        default = test.args[2]
        return test.args[1].value if isinstance(default, ast.Constant) and not default.value else None
    return None


def _gated_reads(view: FileView, provided: Container[str]) -> set[str]:
    """Config attributes read only inside ``if`` branches that run only when the config has an
    attribute no config class defines (``if getattr(config, "ada_rms_norm_t_cond", False):``):
    a config without that attribute never reaches them, and one from a config.json setting it
    brings the fields it gates too."""
    gated: set[int] = set()
    for branch in view.nodes(ast.If):
        gate = _gate(branch.test)
        if gate is not None and gate not in provided:
            gated.update(id(inner) for statement in branch.body for inner in ast.walk(statement))
    inside: set[str] = set()
    outside: set[str] = set()
    for name, read in _config_read_nodes(view):
        (inside if id(read) in gated else outside).add(name)
    return inside - outside


def _optional_reads(view: FileView) -> set[str]:
    """Attributes the file probes (``hasattr(x, "X")``, ``getattr(x, "X", default)``): optional."""
    names = set()
    for node in view.nodes(ast.Call):
        if (
            isinstance(node.func, ast.Name)
            and (node.func.id == "hasattr" or (node.func.id == "getattr" and len(node.args) + len(node.keywords) > 2))
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            names.add(node.args[1].value)
    return names


def _none_defaults(context: ReviewContext) -> set[str]:
    """Fields the bridge class's ``__init__`` takes with a ``None`` default (and so always sets)."""
    if context.bridge is None:
        return set()
    _, class_name, module = context.bridge
    info = context.resolver.module(module)
    init = info.classes[class_name].methods.get("__init__") if info and class_name in info.classes else None
    return {p.name for p in init.params[1:] if p.default == "None"} if init else set()


def _hasattr_probes(view: FileView) -> list[tuple[str, int]]:
    """(attribute, line) of every ``hasattr(<config>, "X")`` in the file."""
    return [
        (node.args[1].value, node.lineno)
        for node in view.nodes(ast.Call)
        if isinstance(node.func, ast.Name)
        and node.func.id == "hasattr"
        and len(node.args) == 2
        and _holds_config(node.args[0])
        and isinstance(node.args[1], ast.Constant)
        and isinstance(node.args[1].value, str)
    ]


def _always_true_probes(context: ReviewContext, view: FileView) -> list[Finding]:
    """``hasattr(config, "X")`` where the bridge sets X to None by default: always true now."""
    if context.bridge is None:
        return []
    bridge_class = context.bridge[1]
    defaults = _none_defaults(context)
    return [
        view.finding(
            CHECK,
            line,
            f"config.{name}",
            f"hasattr(config, {name!r}) is always true: the bridge {bridge_class}.__init__ sets {name} "
            "(None by default), where upstream's config may lack it",
            manual(f"test getattr(config, {name!r}, None) is not None instead"),
        )
        for name, line in _hasattr_probes(view)
        if name in defaults
    ]


def _model_reads(context: ReviewContext, view: FileView) -> list[Finding]:
    classes = _bridge_classes(context)
    if not classes:
        return []
    fields = ConfigFields(context.resolver, classes)
    where = context.bridge[2] if context.bridge else classes[0][0]
    if len({module for module, _ in classes}) > 1:
        where += " and the migrated config modules"
    findings = []
    written = {n.attr for n in view.nodes(ast.Attribute) if isinstance(n.ctx, ast.Store)}
    optional = _optional_reads(view) | _gated_reads(view, fields.provided)
    for name, line in sorted(_config_reads(view).items(), key=lambda item: item[1]):
        if name.startswith("__") or name in written or name in optional:
            continue
        if name not in fields.provided:
            findings.append(
                view.finding(
                    CHECK,
                    line,
                    f"config.{name}",
                    f"no config class of {where} defines {name} (classes: {', '.join(c for _, c in classes)})",
                    manual(f"add {name} with the upstream default to the config bridge"),
                )
            )
        elif name in fields.without_default:
            findings.append(
                view.finding(
                    CHECK,
                    line,
                    f"config.{name}",
                    f"{fields.without_default[name]}.__init__ takes {name} without a default: a config.json lacking it fails",
                    manual(f"give {name} the upstream default in {fields.without_default[name]}.__init__"),
                )
            )
    return findings + _always_true_probes(context, view)
