"""The config, one idea per module: :mod:`.fields` (what a key is: default, kind, constraint, help, fingerprint
role), :mod:`.schema` (every key, in typed sections, and :class:`Config`, which reads a config through them),
:mod:`.load` (YAML files and dotted overrides, merged and validated before anything is written; a run folder's
config read back), :mod:`.recipe` (a step's epochs and the recipe in words) and :mod:`.reference` (the reference
page). An unknown key, a value of the wrong kind or out of range is a :class:`~modistill.errors.UserError` (one
line, exit code 2), never a silent no-op or an error deep inside a library.
"""

from modistill.config.fields import (
    NO_EFFECT,
    ROLE_WORDS,
    ROLES,
    RUN,
    STEP,
    WHEN_DISTILLING,
    WHEN_SET,
    WHEN_USED,
    WORLD_SIZE,
    Field,
    allowed,
    option,
)
from modistill.config.load import (
    CONFIG_DIR,
    bundled_configs,
    dump_config,
    load_config,
    load_run_config,
    parse_override,
    read_yaml,
    resolve_config_path,
    validate,
)
from modistill.config.recipe import describe_epochs, describe_init, describe_recipe, epochs_for, patience_for
from modistill.config.reference import reference_markdown
from modistill.config.schema import (
    DEFAULTS,
    SCHEMA,
    SECTIONS,
    Config,
    DataSection,
    DistillSection,
    EvaluateSection,
    ModelSection,
    Schema,
    TrainSection,
)

__all__ = [
    "CONFIG_DIR",
    "DEFAULTS",
    "NO_EFFECT",
    "ROLES",
    "ROLE_WORDS",
    "RUN",
    "SCHEMA",
    "SECTIONS",
    "STEP",
    "WHEN_DISTILLING",
    "WHEN_SET",
    "WHEN_USED",
    "WORLD_SIZE",
    "Config",
    "DataSection",
    "DistillSection",
    "EvaluateSection",
    "Field",
    "ModelSection",
    "Schema",
    "TrainSection",
    "allowed",
    "bundled_configs",
    "describe_epochs",
    "describe_init",
    "describe_recipe",
    "dump_config",
    "epochs_for",
    "patience_for",
    "load_config",
    "load_run_config",
    "option",
    "parse_override",
    "read_yaml",
    "reference_markdown",
    "resolve_config_path",
    "validate",
]
