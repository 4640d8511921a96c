"""Stage settings: one pydantic model per stage is the only place a setting is declared.

A field's type, default, limits (`Field(gt=...)`) and help text (`description`) live in its stage's model;
the CLI's options (cli.py), the pipeline's YAML steps (pipeline.py) and the settings recorded in reports and
training_info.json (`record()`) are all derived from it.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from cachetune.errors import InputError
from cachetune.inputs import first_error


class StageSettings(BaseModel):
    """Base of every stage's settings: unknown fields are refused, a built object never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Fields a pipeline fills itself (output folders, resume, the run's base model): never set in its YAML.
    PIPELINE_FILLS: ClassVar[frozenset[str]] = frozenset()
    # Fields that, in a pipeline config, name files written by an earlier stage of the same run.
    RUN_INPUTS: ClassVar[frozenset[str]] = frozenset()

    def record(self) -> dict:
        """Every setting as JSON-ready values: what reports and training_info.json store."""
        return self.model_dump(mode="json")


S = TypeVar("S", bound=BaseModel)


def build(model: type[S], values: dict[str, Any], name_of: Callable[[str], str]) -> S:
    """`model(**values)`, or an `InputError` that names the first wrong field as `name_of(field)` calls it.

    Args:
        model: a settings model.
        values: field values.
        name_of: how the caller names a field: `--batch-size` on the command line, `FILE: train.batch_size` in a config.

    Raises:
        InputError: a value is missing, of the wrong type, or out of its limits.
    """
    try:
        return model(**values)
    except ValidationError as error:
        named = lambda location: name_of(str(location[0])) + "".join(f"[{part}]" for part in location[1:]) if location else ""  # noqa: E731
        raise InputError(first_error(error, named)) from None


def _split_commas(value: Any) -> Any:
    """`"query,value"` (as typed on a command line) -> `["query", "value"]`; lists pass through, split too."""
    items = [value] if isinstance(value, str) else value
    if isinstance(items, list | tuple):
        return tuple(part.strip() for item in items for part in str(item).split(",") if part.strip())
    return value


def _one_or_many(value: Any) -> Any:
    """A single path (as a YAML step may give it) is a list of one."""
    return (value,) if isinstance(value, str | Path) else value


# A list of names given as repeated values or as one comma-separated string.
NameList = Annotated[tuple[str, ...], BeforeValidator(_split_commas)]
# Files given as repeated values, or one file.
PathList = Annotated[tuple[Path, ...], BeforeValidator(_one_or_many)]
