"""The one YAML dialect drc reads (no duplicate keys) and how it names a location in it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from drc.errors import CatalogIssue

_UNION_TAGS = {"http", "tcp", "redis", "postgres"}


_MERGE_TAG = "tag:yaml.org,2002:merge"

# What PyYAML's own constructors let escape on a malformed scalar (``2024-13-01``,
# ``!!int abc``, ``!!bool maybe``, ``!!timestamp x``) instead of a ``YAMLError``.
_CONSTRUCTOR_FAILURES = (ValueError, TypeError, KeyError, AttributeError, OverflowError)


class UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate mapping keys instead of keeping the last one.

    Every problem in the text is a ``yaml.YAMLError`` with a position, never another exception.
    """

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """Construct ``node``, turning a Python error from a constructor into a located one."""
        try:
            return super().construct_object(node, deep)
        except _CONSTRUCTOR_FAILURES as exc:
            kind = node.tag.rsplit(":", 1)[-1]
            shown = f" {node.value!r}" if isinstance(node, yaml.ScalarNode) else ""
            raise yaml.constructor.ConstructorError(
                None, None, f"not a valid {kind}{shown}", node.start_mark
            ) from exc


def _construct_unique_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue  # ``<<: *defaults``: a key written here may override a merged one
        key = loader.construct_object(key_node)
        try:
            duplicate = key in seen
        except TypeError:  # a list or mapping as a key; SafeLoader words it the same way
            raise yaml.constructor.ConstructorError(
                None, None, "found unhashable key", key_node.start_mark
            ) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_unique_mapping,
)


def format_location(loc: Sequence[int | str]) -> str:
    """Turn a pydantic error location into ``services[2].replicas[0].url``."""
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _UNION_TAGS and _is_check_branch(loc, i):
            continue  # the discriminated-union branch, not a key the user wrote
        else:
            out += f".{part}" if out else str(part)
    return out


def _is_check_branch(loc: Sequence[int | str], i: int) -> bool:
    # Only ``checks[N].<tag>`` is a union branch; a user's own key called ``redis`` elsewhere
    # (say, a typo on a replica) must keep its place in the location.
    return i >= 2 and isinstance(loc[i - 1], int) and loc[i - 2] == "checks"


def is_tuple_echo(error: Any) -> bool:
    """Whether a pydantic error is only the echo of an inner error (a "too short" tuple)."""
    # pydantic counts only the items that validated, so a one-replica service with a typo is
    # also "too short" (and so is every tuple above it); that echo hides the real problem.
    given, ctx = error.get("input"), error.get("ctx") or {}
    return (
        error["type"] == "too_short"
        and isinstance(given, list | tuple)
        and len(given) >= ctx.get("min_length", 0)
    )


class YamlReadError(Exception):
    """A file that cannot be read, or is not valid YAML; ``issue`` locates the problem."""

    def __init__(self, issue: CatalogIssue) -> None:
        self.issue = issue
        super().__init__(str(issue))


def read_yaml(path: Path | str) -> Any:
    """The parsed YAML of ``path`` in drc's dialect (``UniqueKeyLoader``).

    Raises ``YamlReadError`` with "cannot read: ..." or "invalid YAML: ..." at its line and
    column; every loader (catalog, runbook, chaos experiment) wraps it in its own error.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise YamlReadError(CatalogIssue("", f"cannot read: {exc.strerror}")) from None
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlReadError(CatalogIssue(where, f"invalid YAML: {problem}")) from None
