"""P22: transformers 5 ``@strict`` dataclass configs become transformers 4 configs with an ``__init__``.

What: on a class decorated ``@strict`` (huggingface_hub's dataclass validation), the decorators
``@strict`` and ``@auto_docstring(...)`` are dropped; the class-level fields (``vocab_size: int =
32000``; ``ClassVar`` annotations stay) become an ``__init__(self, vocab_size=32000, ...,
**kwargs)`` that calls ``super().__init__(**kwargs)`` first, then sets each field, then runs what
``__post_init__`` did (its ``super().__post_init__(**kwargs)`` dropped: the base ran already). A
mutable or ``field(default_factory=f)`` default becomes ``None`` in the signature and is built per
instance; a field with a validator (``interval(min=0.0)(default=0.02)``) keeps its default and
loses the validation (4.x configs do not validate fields); a field without a default gets ``None``. Calls of transformers 5 config methods that
4.x's ``PretrainedConfig`` lacks (``self.X()`` or ``super().X()``, no arguments) take their
transformers 4 spelling from ``CONFIG_METHOD_CALLS``: ``validate_layer_type()`` ->
``layer_type_validation(self.layer_types, self.num_hidden_layers)`` (when ``layer_types`` is set),
``validate_rope()`` -> ``rope_config_validation(self)``, ``standardize_rope_params()`` dropped (its
comments go to the next statement); the helpers are imported from where 4.x defines them. Imports
left unused (``strict``, ``auto_docstring``, names only the field annotations or validators
used, such as transformers 5's ``RopeParameters`` or ``interval``) are removed. Sub-configs declared
``sub_configs_defaults = {"k": SubConfigSpec(config_class=C, [init_kwargs=...], [optional=...])}``
become 4.x's ``sub_configs = {"k": C}`` (the optional ones left out, as below), built where transformers 5's base ``__post_init__`` builds them (at
the class's ``super().__post_init__()``, else right after the fields): a dict becomes
``C(**k)``, ``None`` ``C(**init_kwargs)`` unless optional; an ``AutoConfig`` entry (a class chosen
by ``model_type`` at load) builds ``CONFIG_MAPPING[k.get("model_type", <default>)]`` as 4.x's
composite configs do, when the pinned transformers knows the default model_type; when it does not,
the class upstream maps that model_type to (``sub_config_classes``: defined in the same file, the
pin's own class of that name, or a bridged one) builds it unless the dict names a model_type the
pin knows (else the declaration stays as it is: a step 6 finding). A model_type the pin lacks that
the file looks up itself, ``CONFIG_MAPPING["qwen3_vl_vision"]``, is registered in the pin's mapping
with that class when the file is imported (after its imports; a class the file defines, at its end).
A class that declares ``sub_configs = {...}`` itself, ``@strict`` or not, loses the entries its
``__init__`` (or the one written for it) may leave ``None``: those it builds under no ``if <key> is
None:``: 4.x diffs each entry as a config when it prints or saves one, and fails on one left
``None``, as a text-only Gemma 4 leaves its vision and audio configs. A class that uses
transformers 5's per-layer config views (``per_layer_config``: ``config.per_layer_config[i]`` is the config with layer ``i``'s overrides,
Gemma 4's global attention layers) gets ``PER_LAYER_MIXIN`` as its first base, written once into
the module; where transformers 5's base ``__post_init__`` applied ``kwargs["per_layer_config"]``
last, the folded ``__init__`` applies it. One count per class rewritten.

Why: transformers 4.x (vLLM 0.13.0 pins 4.57) builds a config with ``cls(**config_dict)`` and reads
fields that ``__init__`` sets; class-level annotations alone are never read from ``config.json``,
``PretrainedConfig`` has no ``__post_init__`` nor the methods of ``CONFIG_METHOD_CALLS`` (each entry
says why its spelling keeps behaviour), and ``auto_docstring`` of 4.x does not document configs. A
config that exists only in transformers 5 is bridged from there.

When: the pin runs a transformers 4 (the one ``Pinned`` chose, as for config bridges) and a config
bridge was copied from transformers 5 (``PreTrainedConfig`` itself is P14's rename).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import libcst as cst
import libcst.matchers as m

from .base import TRANSFORMERS_5, PatchContext, PatchTransformer
from .syntax import decorator_name, drop_items

ID = "P22"
NAME = "strict-configs"
PINNED = ">=0"  # any pin: the transformers it runs with decides (relevant())

REMOVED_DECORATORS = ("strict", "auto_docstring")
SUB_CONFIGS_DEFAULTS = "sub_configs_defaults"
CONFIG_MAPPING = ("transformers.models.auto.configuration_auto", "CONFIG_MAPPING")
"""Where transformers 4 and 5 keep the model_type -> config class mapping ``AutoConfig`` uses."""
_EMPTY = cst.Module(body=[])
PER_LAYER_CONFIG = "per_layer_config"
PER_LAYER_MIXIN = "_PerLayerConfigs"
PER_LAYER_SOURCE = f'''
class {PER_LAYER_MIXIN}:
    """transformers 5's per-layer config views on a transformers 4 config (pytest-flmigrate, P22):
    ``config.per_layer_config[i]`` is a copy of the config with layer ``i``'s overrides set."""

    @property
    def per_layer_config(self):
        overrides = self.__dict__.get("_per_layer_overrides") or {{}}
        return [self._layer_config(overrides.get(index, {{}})) for index in range(self.num_hidden_layers)]

    @per_layer_config.setter
    def per_layer_config(self, overrides):
        self.__dict__["_per_layer_overrides"] = {{int(k): dict(v) for k, v in (overrides or {{}}).items()}}

    def _layer_config(self, overrides):
        layer = _copy.copy(self)
        layer.__dict__.pop("_per_layer_overrides", None)
        for name, value in overrides.items():
            setattr(layer, name, value)
        return layer

    def to_dict(self):
        output = super().to_dict()
        overrides = output.pop("_per_layer_overrides", None)
        if overrides:
            output["{PER_LAYER_CONFIG}"] = {{str(k): v for k, v in overrides.items()}}
        return output
'''
_APPLY_PER_LAYER = f'if "{PER_LAYER_CONFIG}" in kwargs:\n    self.{PER_LAYER_CONFIG} = kwargs["{PER_LAYER_CONFIG}"]\n'
_CONFIG_BASES = m.Arg(value=m.Name("PreTrainedConfig") | m.Name("PretrainedConfig"))


@dataclass(frozen=True)
class MethodCall:
    """The transformers 4 spelling of a transformers 5 config method called with no argument."""

    helper: tuple[str, str] | None  # (module, name) of the 4.x function the spelling calls
    statements: str | None  # the statements replacing the call; None drops it
    why: str


CONFIG_METHOD_CALLS: dict[str, MethodCall] = {
    "validate_layer_type": MethodCall(
        ("transformers.configuration_utils", "layer_type_validation"),
        'if getattr(self, "layer_types", None) is not None:\n'
        '    layer_type_validation(self.layer_types, getattr(self, "num_hidden_layers", None))\n',
        "4.x's check of the same list against the same layer count",
    ),
    "validate_rope": MethodCall(
        ("transformers.modeling_rope_utils", "rope_config_validation"),
        'if isinstance(getattr(self, "rope_scaling", None), dict) and "type" in self.rope_scaling:\n'
        '    self.rope_scaling.setdefault("rope_type", self.rope_scaling["type"])\n'
        'rope_config_validation(self, ignore_keys=getattr(self, "ignore_keys_at_rope_validation", None))\n',
        "4.x's validation of the rope fields a 4.x config keeps (rope_scaling, rope_theta), per rope type, "
        "with the keys the class exempts; like 5.x's, it first takes a legacy 'type' as the rope_type "
        "(4.x's validator requires rope_type, 4.x configs copy it by hand)",
    ),
    "standardize_rope_params": MethodCall(
        None,
        None,
        "it folds rope_theta, partial_rotary_factor and rope_scaling into rope_parameters; on a 4.x pin "
        "vLLM does that itself when it loads the config (patch_rope_parameters: rope_parameters from "
        "rope_scaling plus rope_theta and partial_rotary_factor, a given rope_parameters kept), before "
        "model code reads it, as for every 4.x config",
    ),
}
"""transformers 5 config method -> its spelling for a 4.x ``PretrainedConfig``, which lacks it."""


def relevant(source: str, context: PatchContext) -> bool:
    """Only files with a ``@strict`` class need this patch, and only when the pin runs a transformers 4."""
    return context.pinned_transformers < TRANSFORMERS_5 and "@strict" in source


def _field(statement: cst.BaseStatement) -> tuple[str, cst.AnnAssign] | None:
    """The name and annotated class-level field a statement declares (``ClassVar`` ones are not fields)."""
    if not (isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1):
        return None
    node = statement.body[0]
    if not (isinstance(node, cst.AnnAssign) and isinstance(node.target, cst.Name)):
        return None
    annotation = node.annotation.annotation
    head = annotation.value if isinstance(annotation, cst.Subscript) else annotation
    if m.matches(head, m.Name("ClassVar") | m.Attribute(attr=m.Name("ClassVar"))):
        return None
    return node.target.value, node


def _validator(value: cst.BaseExpression | None) -> str | None:
    """``interval`` of ``interval(min=0.0, max=1.0)(default=0.02)``: a transformers 5 field with a
    validator (a factory called with the field's ``default``); 4.x configs do not validate fields."""
    if isinstance(value, cst.Call) and isinstance(value.func, cst.Call) and isinstance(value.func.func, cst.Name):
        return value.func.func.value
    return None


def _default(value: cst.BaseExpression | None) -> tuple[str, str | None]:
    """(signature default, per-instance default or None) of a field's value."""
    if value is None:
        return "None", None
    if isinstance(value, cst.Call) and (m.matches(value.func, m.Name("field")) or _validator(value)):
        for arg in value.args:
            if arg.keyword is not None and arg.keyword.value == "default":
                return _EMPTY.code_for_node(arg.value), None
            if arg.keyword is not None and arg.keyword.value == "default_factory":
                return "None", f"{_EMPTY.code_for_node(arg.value)}()"
        return "None", None
    code = _EMPTY.code_for_node(value)
    if isinstance(value, (cst.List, cst.Dict, cst.Set, cst.ListComp, cst.DictComp, cst.SetComp)):
        return "None", code
    return code, None


_SUPER_POST_INIT = m.SimpleStatementLine(
    body=[m.Expr(value=m.Call(func=m.Attribute(value=m.Call(func=m.Name("super")), attr=m.Name("__post_init__"))))]
)
_SELF_OR_SUPER = m.Name("self") | m.Call(func=m.Name("super"), args=[])
_METHOD_CALL = m.SimpleStatementLine(body=[m.Expr(value=m.Call(func=m.Attribute(value=_SELF_OR_SUPER), args=[]))])


class _DropSuperPostInit(cst.CSTTransformer):
    """``__post_init__``'s statements as the tail of ``__init__``: the base ran already, except for
    what transformers 5's base ``__post_init__`` did there that 4.x's base does not (building the
    sub-configs: ``creation``, put in the call's place)."""

    def __init__(self, creation: list[cst.BaseStatement]) -> None:
        super().__init__()
        self.creation = creation
        self.replaced = False

    def leave_SimpleStatementLine(self, original_node, updated_node):
        if not m.matches(updated_node, _SUPER_POST_INIT):
            return updated_node
        if not self.creation or self.replaced:
            return cst.RemovalSentinel.REMOVE
        self.replaced = True
        return cst.FlattenSentinel(self.creation)


@dataclass(frozen=True)
class SubConfig:
    """One entry of ``sub_configs_defaults``: its class (``AutoConfig`` for a class chosen by
    ``model_type``), the default model_type's code, the ``init_kwargs`` code, whether it is optional,
    and for a default model_type the pin does not know, the class that builds it."""

    config_class: str
    model_type: str | None
    init_kwargs: str
    optional: bool
    fallback: str | None = None


def _sub_configs(
    statements: list[cst.BaseStatement], known: frozenset[str], fallbacks: Mapping[str, str]
) -> tuple[int, dict[str, SubConfig]] | None:
    """(position, key -> entry) of a class's ``sub_configs_defaults = {"k": SubConfigSpec(config_class=C,
    ...)}``, when every entry names its class, or is an ``AutoConfig`` whose ``model_type`` the pinned
    transformers knows (``known``) or has a class for (``fallbacks``: model_type -> class name)."""
    for position, statement in enumerate(statements):
        if not (isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1):
            continue
        node = statement.body[0]
        if isinstance(node, cst.Assign) and len(node.targets) == 1:
            target, value = node.targets[0].target, node.value
        elif isinstance(node, cst.AnnAssign):
            target, value = node.target, node.value  # type: ignore[assignment]
        else:
            continue
        if not (isinstance(target, cst.Name) and target.value == SUB_CONFIGS_DEFAULTS):
            continue
        if not isinstance(value, cst.Dict):
            return None
        specs: dict[str, SubConfig] = {}
        for element in value.elements:
            if not isinstance(element, cst.DictElement) or not isinstance(element.key, cst.SimpleString):
                return None
            spec = _spec(element.value, known, fallbacks)
            if spec is None:
                return None
            specs[str(element.key.evaluated_value)] = spec
        return position, specs
    return None


def _spec(spec: cst.BaseExpression, known: frozenset[str], fallbacks: Mapping[str, str]) -> SubConfig | None:
    """The entry a ``SubConfigSpec(...)`` call declares, or None when P22 cannot build it."""
    if not (isinstance(spec, cst.Call) and m.matches(spec.func, m.Name("SubConfigSpec"))):
        return None
    arguments = {arg.keyword.value if arg.keyword else "config_class": arg.value for arg in spec.args}
    config_class = arguments.get("config_class")
    if set(arguments) - {"config_class", "model_type", "init_kwargs", "optional"}:
        return None
    if not isinstance(config_class, cst.Name):
        return None
    model_type = arguments.get("model_type")
    if (config_class.value == "AutoConfig") != (model_type is not None):
        return None
    fallback = None
    if model_type is not None:
        if not isinstance(model_type, cst.SimpleString):
            return None
        default = str(model_type.evaluated_value)
        if default not in known:
            fallback = fallbacks.get(default)
            if fallback is None:
                return None
    optional = arguments.get("optional")
    if optional is not None and not m.matches(optional, m.Name("True") | m.Name("False")):
        return None
    init_kwargs = arguments.get("init_kwargs")
    return SubConfig(
        config_class.value,
        _EMPTY.code_for_node(model_type) if model_type is not None else None,
        _EMPTY.code_for_node(init_kwargs) if init_kwargs is not None else "{}",
        m.matches(optional, m.Name("True")) if optional is not None else False,
        fallback,
    )


def auto_model_types(module: cst.Module) -> set[str]:
    """The default model_types of the ``SubConfigSpec(config_class=AutoConfig, model_type=...)``
    entries in ``module``: the sub-configs P22 can build only with a class for each."""
    found = set()
    for call in m.findall(module, m.Call(func=m.Name("SubConfigSpec"))):
        for arg in cst.ensure_type(call, cst.Call).args:
            if (
                arg.keyword is not None
                and arg.keyword.value == "model_type"
                and isinstance(arg.value, cst.SimpleString)
            ):
                found.add(str(arg.value.evaluated_value))
    return found


def mapped_model_types(module: cst.Module) -> set[str]:
    """The model_types ``module`` looks up as literals, ``CONFIG_MAPPING["qwen3_vl_vision"]``: the
    sub-configs a class builds itself (in ``__post_init__``) that need the pin to know the type."""
    found = set()
    for subscript in m.findall(module, m.Subscript(value=m.Name(CONFIG_MAPPING[1]))):
        elements = cst.ensure_type(subscript, cst.Subscript).slice
        index = elements[0].slice if len(elements) == 1 else None
        if isinstance(index, cst.Index) and isinstance(index.value, cst.SimpleString):
            found.add(str(index.value.evaluated_value))
    return found


def _registration(model_type: str, class_name: str) -> cst.BaseStatement:
    """``CONFIG_MAPPING.register(model_type, class_name)``, as transformers 5 registers the type."""
    return cst.parse_statement(f'{CONFIG_MAPPING[1]}.register("{model_type}", {class_name}, exist_ok=True)\n')


def _creation(specs: dict[str, SubConfig]) -> list[cst.BaseStatement]:
    """transformers 5's ``SubConfigSpec.create_subconfig`` for each key: a dict becomes the class
    (for ``AutoConfig``, the class ``CONFIG_MAPPING`` has for the dict's ``model_type``, else the
    spec's, or the fallback class when the pin does not know that model_type), ``None`` the class's
    defaults (left ``None`` when optional), a config stays as it is."""
    source = ""
    mapping = CONFIG_MAPPING[1]
    for key, spec in specs.items():
        if spec.model_type is None:
            from_dict, default = f"{spec.config_class}(**self.{key})", f"{spec.config_class}(**{spec.init_kwargs})"
        elif spec.fallback is None:
            from_dict = f'{mapping}[self.{key}.get("model_type", {spec.model_type})](**self.{key})'
            default = f"{mapping}[{spec.model_type}](**{spec.init_kwargs})"
        else:
            from_dict = (
                f'{mapping}[self.{key}["model_type"]](**self.{key}) '
                f'if self.{key}.get("model_type", {spec.model_type}) in {mapping} else {spec.fallback}(**self.{key})'
            )
            default = f"{spec.fallback}(**{spec.init_kwargs})"
        source += f"if isinstance(self.{key}, dict):\n    self.{key} = {from_dict}\n"
        if not spec.optional:
            source += f"elif self.{key} is None:\n    self.{key} = {default}\n"
    return list(cst.parse_module(source).body)


def _always_built_sub_configs(node: cst.ClassDef) -> cst.ClassDef | None:
    """The class with the ``sub_configs`` entries its ``__init__`` may leave None left out (kept:
    those an ``if self.<key> is None:`` or ``if <key> is None:`` assigns); None when it declares no
    literal ``sub_configs``, has no ``__init__`` or builds every entry."""
    if not isinstance(node.body, cst.IndentedBlock):
        return None
    init = next((s for s in node.body.body if isinstance(s, cst.FunctionDef) and s.name.value == "__init__"), None)
    declared = next((s for s in node.body.body if m.matches(s, _SUB_CONFIGS_DICT)), None)
    if init is None or declared is None:
        return None
    assign = cst.ensure_type(cst.ensure_type(declared, cst.SimpleStatementLine).body[0], cst.Assign)
    entries = cst.ensure_type(assign.value, cst.Dict).elements
    keys = [
        element.key.evaluated_value
        if isinstance(element, cst.DictElement) and isinstance(element.key, cst.SimpleString)
        else None
        for element in entries
    ]
    if not all(isinstance(key, str) for key in keys):
        return None
    kept = [element for element, key in zip(entries, keys, strict=True) if _built_when_none(init, str(key))]
    if len(kept) == len(entries):
        return None
    if kept:  # the last entry keeps no trailing comma of its own
        kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    narrowed = declared.with_changes(body=[assign.with_changes(value=assign.value.with_changes(elements=kept))])
    body = [narrowed if statement is declared else statement for statement in node.body.body]
    return node.with_changes(body=node.body.with_changes(body=body))


_SUB_CONFIGS_DICT = m.SimpleStatementLine(
    body=[m.Assign(targets=[m.AssignTarget(target=m.Name("sub_configs"))], value=m.Dict())]
)


def _built_when_none(init: cst.FunctionDef, key: str) -> bool:
    """Whether ``__init__`` has an ``if`` testing ``self.<key>`` or ``<key>`` ``is None`` whose body
    assigns it."""
    named = m.Attribute(value=m.Name("self"), attr=m.Name(key)) | m.Name(key)
    test = m.Comparison(left=named, comparisons=[m.ComparisonTarget(operator=m.Is(), comparator=m.Name("None"))])
    for branch in m.findall(init, m.If(test=test)):
        if m.findall(cst.ensure_type(branch, cst.If).body, m.AssignTarget(target=named)):
            return True
    return False


def _translation(statement: cst.BaseStatement, own_methods: set[str]) -> MethodCall | None:
    """The entry of ``CONFIG_METHOD_CALLS`` for a statement calling one of its methods: through
    ``super()``, or through ``self`` when the class does not define the method itself."""
    if not m.matches(statement, _METHOD_CALL):
        return None
    call = cst.ensure_type(cst.ensure_type(statement, cst.SimpleStatementLine).body[0], cst.Expr).value
    method = cst.ensure_type(cst.ensure_type(call, cst.Call).func, cst.Attribute)
    if isinstance(method.value, cst.Name) and method.attr.value in own_methods:
        return None
    return CONFIG_METHOD_CALLS.get(method.attr.value)


class _ConfigMethodCalls(cst.CSTTransformer):
    """Calls of ``CONFIG_METHOD_CALLS`` -> their transformers 4 spelling; the helpers they need."""

    def __init__(self, own_methods: set[str]) -> None:
        super().__init__()
        self.own_methods = own_methods
        self.helpers: set[tuple[str, str]] = set()

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        body: list[cst.BaseStatement] = []
        carried: list[cst.EmptyLine] = []  # the comments of dropped calls, for the next statement
        for statement in updated_node.body:
            translation = _translation(statement, self.own_methods)
            leading = [*carried, *getattr(statement, "leading_lines", ())]
            if translation is not None and translation.statements is None:
                carried = leading
                continue
            spelling = [statement]
            if translation is not None and translation.statements is not None:
                spelling = list(cst.parse_module(translation.statements).body)
                if translation.helper:
                    self.helpers.add(translation.helper)
            body += [spelling[0].with_changes(leading_lines=leading), *spelling[1:]]
            carried = []
        if not body:
            body = [cst.SimpleStatementLine(body=[cst.Pass()], leading_lines=carried)]
        return updated_node.with_changes(body=body)


class Transformer(PatchTransformer):
    def __init__(self, context: PatchContext) -> None:
        super().__init__(context)
        self.helpers: set[tuple[str, str]] = set()  # 4.x functions the translated method calls need
        self.annotation_names: set[str] = set()  # names the dropped field annotations used
        self.per_layer = False  # a class got PER_LAYER_MIXIN: the module gets its source

    def leave_ClassDef(self, original_node: cst.ClassDef, updated_node: cst.ClassDef) -> cst.ClassDef:
        rewritten = self._rewritten(updated_node)
        per_layer = self._with_per_layer_views(rewritten or updated_node)
        if per_layer is not None:
            if rewritten is None:
                self.count += 1
            return per_layer
        return rewritten or updated_node

    def _with_per_layer_views(self, node: cst.ClassDef) -> cst.ClassDef | None:
        """A config class (a direct subclass of the base config) using ``per_layer_config`` with
        ``PER_LAYER_MIXIN`` first among its bases; None for any other class."""
        if not any(m.matches(base, _CONFIG_BASES) for base in node.bases):
            return None
        if not m.findall(node, m.Name(PER_LAYER_CONFIG) | m.SimpleString(f'"{PER_LAYER_CONFIG}"')):
            return None
        self.per_layer = True
        return node.with_changes(bases=[cst.Arg(value=cst.Name(PER_LAYER_MIXIN)), *node.bases])

    def _rewritten(self, updated_node: cst.ClassDef) -> cst.ClassDef | None:
        """The class as transformers 4 reads it (the module docstring), or None when unchanged."""
        if not any(decorator_name(d) == "strict" for d in updated_node.decorators):
            built = _always_built_sub_configs(updated_node)
            if built is None:
                return None
            self.count += 1
            return built
        if not isinstance(updated_node.body, cst.IndentedBlock):  # ``class C: ...`` declares no field
            return None
        statements = list(updated_node.body.body)
        fallbacks = {model_type: name for model_type, (_, name) in self.context.sub_config_classes.items()}
        sub_configs = _sub_configs(statements, self.context.transformers_model_types, fallbacks)
        creation: list[cst.BaseStatement] = []
        if sub_configs is not None:
            position, specs = sub_configs
            classes = ", ".join(f'"{key}": {spec.config_class}' for key, spec in specs.items())
            if any(spec.model_type is not None for spec in specs.values()):
                self.helpers.add(CONFIG_MAPPING)
            self.helpers |= self._fallback_imports(specs)
            original = cst.ensure_type(statements[position], cst.SimpleStatementLine)
            replaced = cst.ensure_type(cst.parse_statement(f"sub_configs = {{{classes}}}\n"), cst.SimpleStatementLine)
            statements[position] = replaced.with_changes(leading_lines=original.leading_lines)
            creation = _creation(specs)
            self.annotation_names.add("SubConfigSpec")
        if m.findall(updated_node, m.SimpleString(f'"{PER_LAYER_CONFIG}"')):
            creation = [*creation, cst.parse_statement(_APPLY_PER_LAYER)]  # 5.x's base applies it last
        fields = [(index, field) for index, s in enumerate(statements) if (field := _field(s)) is not None]
        post_init = next(
            (s for s in statements if isinstance(s, cst.FunctionDef) and s.name.value == "__post_init__"), None
        )
        dropped = {index for index, _ in fields} | ({statements.index(post_init)} if post_init else set())
        at = min(dropped) if dropped else len(statements)
        kept = [s for index, s in enumerate(statements) if index not in dropped]
        init = self._init(fields, post_init, creation)
        first_dropped = statements[at] if at < len(statements) else None
        if isinstance(first_dropped, (cst.SimpleStatementLine, cst.FunctionDef)):  # a field or __post_init__
            init = init.with_changes(leading_lines=first_dropped.leading_lines)  # its blank lines and comments stay
        kept.insert(sum(1 for index in range(at) if index not in dropped), init)
        self.count += 1
        calls = _ConfigMethodCalls({s.name.value for s in kept if isinstance(s, cst.FunctionDef)})
        body = updated_node.body.with_changes(body=kept).visit(calls)
        self.helpers |= calls.helpers
        rewritten = updated_node.with_changes(
            decorators=[d for d in updated_node.decorators if decorator_name(d) not in REMOVED_DECORATORS],
            body=body,
        )
        return _always_built_sub_configs(rewritten) or rewritten

    def _fallback_imports(self, specs: dict[str, SubConfig]) -> set[tuple[str, str]]:
        """(module, class) of each fallback class defined in another module: the pin's, or the
        bridge's in ``vllm_fl/configs/``."""
        imports = set()
        for defining, name in self.context.sub_config_classes.values():
            if defining != self.context.module and any(spec.fallback == name for spec in specs.values()):
                imports.add((self.context.module_map.get(defining, defining), name))
        return imports

    def _init(
        self,
        fields: list[tuple[int, tuple[str, cst.AnnAssign]]],
        post_init: cst.FunctionDef | None,
        creation: list[cst.BaseStatement],
    ) -> cst.FunctionDef:
        params, assignments = [], []
        for _, (name, field) in fields:
            self.annotation_names |= {n.value for n in m.findall(field.annotation, m.Name()) if isinstance(n, cst.Name)}
            validator = _validator(field.value)
            if validator:
                self.annotation_names.add(validator)
            signature_default, per_instance = _default(field.value)
            params.append(f"{name}={signature_default}")
            value = f"{name} if {name} is not None else {per_instance}" if per_instance else name
            assignments.append(f"    self.{name} = {value}\n")
        header = "def __init__(\n" + "".join(f"    {p},\n" for p in ["self", *params, "**kwargs"]) + "):\n"
        source = header + "    super().__init__(**kwargs)\n" + "".join(assignments)
        init = cst.ensure_type(cst.parse_statement(source), cst.FunctionDef)
        init_body = cst.ensure_type(init.body, cst.IndentedBlock)
        if post_init is None:  # transformers 5's base __post_init__ runs right after the fields
            return init.with_changes(body=init_body.with_changes(body=[*init_body.body, *creation]))
        tail = cst.ensure_type(post_init.body.visit(_DropSuperPostInit(creation)), cst.IndentedBlock)
        return init.with_changes(body=init_body.with_changes(body=[*init_body.body, *tail.body]))

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        if not self.count:
            return updated_node
        used = {
            node.value
            for node in m.findall(
                updated_node.with_changes(
                    body=[
                        s for s in updated_node.body if not m.matches(s, m.SimpleStatementLine(body=[m.ImportFrom()]))
                    ]
                ),
                m.Name(),
            )
            if isinstance(node, cst.Name)
        }
        removable = set(REMOVED_DECORATORS) | self.annotation_names
        rewritten = [self._without_unused(statement, used, removable) for statement in updated_node.body]
        body = [statement for statement in rewritten if statement is not None]
        imported = {
            alias.evaluated_alias or alias.evaluated_name
            for alias in m.findall(updated_node, m.ImportAlias())
            if isinstance(alias, cst.ImportAlias)
        }
        last_import = max(
            (i for i, s in enumerate(body) if m.matches(s, m.SimpleStatementLine(body=[m.ImportFrom() | m.Import()]))),
            default=-1,
        )
        registered = self._registered(original_node)
        own = {
            model_type: name for model_type, (defining, name) in registered.items() if defining == self.context.module
        }
        others = {model_type: name for model_type, name in registered.items() if model_type not in own}
        self.helpers |= {(self.context.module_map.get(defining, defining), name) for defining, name in others.values()}
        missing = sorted(helper for helper in self.helpers if helper[1] not in imported)
        per_layer = list(cst.parse_module("import copy as _copy\n" + PER_LAYER_SOURCE).body) if self.per_layer else []
        body[last_import + 1 : last_import + 1] = [
            *(cst.parse_statement(f"from {mod} import {name}\n") for mod, name in missing),
            *(_registration(model_type, name) for model_type, (_, name) in sorted(others.items())),
            *per_layer,
        ]
        body += [_registration(model_type, name) for model_type, name in sorted(own.items())]
        return updated_node.with_changes(body=body)

    def _registered(self, module: cst.Module) -> dict[str, tuple[str, str]]:
        """The model_types ``module`` looks up in ``CONFIG_MAPPING`` that the pinned transformers
        lacks and that have a class (``sub_config_classes``): registered in the pin's mapping when
        the module is imported, as transformers 5 has them (a class the module defines, at its end)."""
        wanted = mapped_model_types(module) - self.context.transformers_model_types
        return {
            model_type: found for model_type, found in self.context.sub_config_classes.items() if model_type in wanted
        }

    @staticmethod
    def _without_unused(statement: cst.BaseStatement, used: set[str], removable: set[str]) -> cst.BaseStatement | None:
        """An import statement without the names only the removed decorators and field
        annotations used."""
        node = (
            statement.body[0] if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1 else None
        )
        if not isinstance(node, cst.ImportFrom):
            return statement
        if isinstance(node.names, cst.ImportStar):
            return statement
        drop = {
            index
            for index, alias in enumerate(node.names)
            if alias.asname is None
            and isinstance(alias.name, cst.Name)
            and alias.name.value in removable
            and alias.name.value not in used
        }
        if not drop:
            return statement
        kept = drop_items(node.names, drop)
        if not kept:
            return None
        return statement.with_changes(body=[node.with_changes(names=kept)])
