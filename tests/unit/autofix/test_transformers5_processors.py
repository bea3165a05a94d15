"""Backporting transformers 5 processors for a transformers 4 pin: P31's decorators and parts, and
the refusals (a behaviour-changing decorator, a hook the pin's ProcessorMixin never calls, a part
4.x cannot declare), over small transformers-shaped trees written here."""

from __future__ import annotations

import ast
from types import SimpleNamespace

import pytest
from packaging.version import Version

from pytest_flmigrate.autofix import planner
from pytest_flmigrate.autofix.backport import Backporter
from pytest_flmigrate.autofix.relocate import Relocator
from pytest_flmigrate.index.build import index_directory
from pytest_flmigrate.index.resolve import Resolver
from pytest_flmigrate.manifest import Manifest
from pytest_flmigrate.patches import p31_transformers5_processors as p31
from pytest_flmigrate.patches import select_patches
from pytest_flmigrate.steps import migrate
from tests.fixtures.trees import VLLM_CORE, write
from tests.unit.autofix.conftest import never

PIN = Version("0.13.0")
PROCESSING = "transformers.models.tinyasr.processing_tinyasr"
COMPAT = "vllm_fl/compat/transformers/models/tinyasr/processing_tinyasr.py"

# what both transformers trees hold alike (a kernel decorator that swaps the class's forward)
COMMON = {
    "transformers/__init__.py": "",
    "transformers/models/__init__.py": "",
    "transformers/integrations/__init__.py": "",
    "transformers/integrations/hub_kernels.py": """
        def use_kernel_forward_from_hub(name):
            def swap(cls):
                cls.forward = None
                return cls
            return swap
    """,
}

UPSTREAM_TRANSFORMERS = {
    **COMMON,
    "transformers/utils/__init__.py": "from .doc import auto_docstring\n",
    "transformers/utils/doc.py": """
        def auto_docstring(obj=None, *, custom_intro=None):
            return obj if obj is not None else (lambda inner: inner)
    """,
    "transformers/utils/import_utils.py": """
        def requires(*, backends=()):
            def attach(obj):
                obj.backends = backends
                return obj
            return attach
    """,
    "transformers/processing_utils.py": """
        class ProcessorMixin:
            def __init__(self, *args, **kwargs):
                self.parts = args
            def __call__(self, text=None, images=None):
                self.validate_inputs(text=text, images=images)
                return text
            def validate_inputs(self, **kwargs):
                return None
            def replace_image_token(self, inputs, index):
                return ""
    """,
    "transformers/models/tinyasr/__init__.py": """
        from .processing_tinyasr import HookedProcessor, KernelProcessor, TinyAsrProcessor, VoiceProcessor
    """,
    f"{PROCESSING.replace('.', '/')}.py": '''
        # Copyright the authors of this fixture.
        from ...integrations.hub_kernels import use_kernel_forward_from_hub
        from ...processing_utils import ProcessorMixin
        from ...utils import auto_docstring
        from ...utils.import_utils import requires


        @requires(backends=("torch",))
        @auto_docstring
        class TinyAsrProcessor(ProcessorMixin):
            r"""A processor of audio and text."""

            def __init__(self, feature_extractor, tokenizer, chat_template=None, audio_token="<a>"):
                self.audio_token = audio_token
                super().__init__(feature_extractor, tokenizer, chat_template=chat_template)

            @auto_docstring
            def __call__(self, text=None, audio=None):
                return self.tokenizer(text)


        @use_kernel_forward_from_hub("TinyNorm")
        class KernelProcessor(ProcessorMixin):
            def __init__(self, tokenizer):
                super().__init__(tokenizer)


        class HookedProcessor(ProcessorMixin):
            def __init__(self, image_processor, tokenizer):
                super().__init__(image_processor, tokenizer)

            def replace_image_token(self, inputs, index):
                return "<image>"


        class VoiceProcessor(ProcessorMixin):
            def __init__(self, audio_processor, tokenizer):
                super().__init__(audio_processor, tokenizer)
    ''',
}

PINNED_TRANSFORMERS = {
    **COMMON,
    "transformers/utils/__init__.py": "def auto_docstring(obj=None, **kwargs):\n    return obj\n",
    "transformers/processing_utils.py": """
        class ProcessorMixin:
            attributes = ["feature_extractor", "tokenizer"]
            feature_extractor_class = None
            tokenizer_class = None
            def __init__(self, *args, **kwargs):
                self.parts = args
            def __call__(self, text=None, images=None):
                return text
    """,
}

UPSTREAM_VLLM = {
    **VLLM_CORE,
    "vllm/model_executor/models/asrmodel.py": """
        from transformers.models.tinyasr import TinyAsrProcessor


        class AsrModelForConditionalGeneration:
            processor_class = TinyAsrProcessor
    """,
}


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """(upstream indexes, pinned indexes): vLLM and transformers on each side."""
    base = tmp_path_factory.mktemp("t5trees")
    upstream = write(base / "upstream", {**UPSTREAM_VLLM, **UPSTREAM_TRANSFORMERS})
    pinned = write(base / "pinned", {**VLLM_CORE, **PINNED_TRANSFORMERS})
    return (
        [index_directory(upstream, "vllm", "0.99.0"), index_directory(upstream, "transformers", "5.19.0")],
        [index_directory(pinned, "vllm", "0.13.0"), index_directory(pinned, "transformers", "4.57.6")],
    )


@pytest.fixture(scope="module")
def fixer(trees):
    upstream, pinned = Resolver(trees[0]), Resolver(trees[1])
    relocator = Relocator(upstream, pinned)
    return planner.Fixer(upstream, pinned, relocator, Backporter(upstream, pinned, relocator))


def closure(fixer, name: str, *, processors: bool = True):
    backporter = Backporter(fixer.upstream, fixer.pinned, None, renames=True, processors=processors)
    return backporter.closure((PROCESSING, name), never)


def test_a_doc_only_decorated_processor_is_backported_only_with_p31(fixer):
    assert closure(fixer, "TinyAsrProcessor").failure is None
    without = closure(fixer, "TinyAsrProcessor", processors=False).failure
    assert without == (
        "TinyAsrProcessor is decorated with @requires, transformers 5 machinery the pinned transformers lacks "
        "(bridge or port it by hand); port it by hand"
    )


def test_a_behaviour_changing_decorator_still_refuses_in_one_line(fixer):
    failure = closure(fixer, "KernelProcessor").failure
    assert failure == (
        "KernelProcessor is decorated with @use_kernel_forward_from_hub, transformers 5 machinery the pinned "
        "transformers lacks (bridge or port it by hand); port it by hand"
    )


def test_a_processor_overriding_a_hook_the_pins_base_never_calls_is_refused(fixer):
    assert closure(fixer, "HookedProcessor").failure == (
        "HookedProcessor overrides replace_image_token of upstream's transformers.processing_utils.ProcessorMixin, "
        "which the pin's transformers.processing_utils.ProcessorMixin lacks and never calls; port it by hand"
    )


def test_a_part_transformers_4_has_no_attribute_for_is_refused(fixer):
    assert closure(fixer, "VoiceProcessor").failure == (
        "VoiceProcessor takes the part audio_processor, which transformers 4's ProcessorMixin has no attribute for "
        "(it knows tokenizer, image_processor, video_processor, feature_extractor); port it by hand"
    )


def plan_for(trees) -> migrate.MigrationPlan:
    upstream = trees[0][0]
    module = "vllm.model_executor.models.asrmodel"
    planned = migrate.PlannedFile(
        module, upstream.root / upstream.modules[module].path, "vllm_fl.models.asrmodel", False, "model"
    )
    return migrate.MigrationPlan(
        SimpleNamespace(name="asrmodel", architectures=()), [planned], {module: planned.plugin_module}, {}, None, ""
    )


def migrate_with(trees, fixer, plugin, patches):
    plan = planner.plan_fixes(plan_for(trees), fixer, patches)
    plan = planner.with_written_compat(plan, fixer, patches, Manifest(plugin))
    pinned = SimpleNamespace(version=PIN, transformers_version=Version("4.57.6"), index=trees[1][0])
    texts = migrate.patched_texts(plan, patches, pinned)
    migrate.write_migration(plan, texts, plugin, plugin / "reports", "test@0.99.0", False)
    return plan


def test_the_written_copy_has_no_doc_only_decorator_and_declares_the_parts_for_4x(trees, fixer, plugin):
    plan = migrate_with(trees, fixer, plugin, select_patches(None, PIN))
    assert plan.backports == {
        ("transformers.models.tinyasr", "TinyAsrProcessor"): (f"vllm_fl.compat.{PROCESSING}", "TinyAsrProcessor")
    }
    copy = (plugin / COMPAT).read_text()
    assert "@" not in copy and "requires" not in copy and "auto_docstring" not in copy
    assert "from transformers.processing_utils import ProcessorMixin\n" in copy
    processor = next(n for n in ast.parse(copy).body if isinstance(n, ast.ClassDef))
    declared = {t.id: ast.literal_eval(s.value) for s in processor.body if isinstance(s, ast.Assign) for t in s.targets}
    assert declared == {
        "attributes": ["feature_extractor", "tokenizer"],
        "feature_extractor_class": "AutoFeatureExtractor",
        "tokenizer_class": "AutoTokenizer",
    }
    model = (plugin / "vllm_fl/models/asrmodel.py").read_text()
    assert f"from vllm_fl.compat.{PROCESSING} import TinyAsrProcessor\n" in model


def test_without_p31_the_processor_is_not_copied_and_step_6_hears_why(trees, fixer, plugin):
    patches = tuple(patch for patch in select_patches(None, PIN) if patch.id != p31.ID)
    plan = migrate_with(trees, fixer, plugin, patches)
    assert plan.backports == {}
    assert "decorated with @requires" in plan.unfixed[("transformers.models.tinyasr", "TinyAsrProcessor")]
    assert not (plugin / COMPAT).exists()
