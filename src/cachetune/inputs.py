"""Reading what users write: YAML files into pydantic models, and a validation error said in one line.

Every config file (the pipeline's, the cache's) is read by `load_yaml`, and every pydantic error a user sees (a
config field, a command-line option, an HTTP body) is worded by `first_error`: the first wrong field, named as the
caller names it, and what is wrong with it.
"""

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from cachetune.errors import InputError

M = TypeVar("M", bound=BaseModel)
Location = tuple[str | int, ...]


class Strict(BaseModel):
    """A model that refuses fields it does not declare: a misspelt setting is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid")


def dotted(location: Location) -> str:
    """('train', 'loss', 0) -> 'train.loss.0'."""
    return ".".join(str(part) for part in location)


def first_error(error, name_of: Callable[[Location], str] = dotted) -> str:
    """'FIELD: what is wrong' for the first problem pydantic found (`error`: a `ValidationError`, or FastAPI's
    `RequestValidationError`), the field named by `name_of(its location)`."""
    problem = error.errors()[0]
    where = name_of(tuple(problem["loc"]))
    message = problem["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def load_yaml(path: Path, model: type[M], root: str | None = None) -> M:
    """The YAML file at `path` (under its top-level key `root`, if given) as a `model`.

    Raises:
        InputError: the file is missing, not YAML, lacks `root`, or a field is wrong ("FILE: root.field: why").
    """
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except yaml.YAMLError as error:
        raise InputError(f"{path}: not valid YAML: {error}") from None
    if root is not None:
        if not isinstance(document, dict) or root not in document:
            raise InputError(f"{path}: expected a top-level '{root}' mapping")
        document = document[root]
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise InputError(f"{path}: {first_error(error, lambda location: dotted((root, *location) if root else location))}") from None
