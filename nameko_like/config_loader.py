"""Loading service configuration from YAML files.

Several files merge in order, later ones winning (nested mappings merge key
by key; any other value is replaced). Scalars may refer to environment
variables:

* ``${VAR}`` is the variable's value; an unset variable is an error.
* ``${VAR:default}`` falls back to ``default``, which may itself hold
  references (``${A:${B:x}}``) and may be empty (``${VAR:}``).

A plain (unquoted) scalar containing ``${`` is substituted and then typed as
YAML would type it had it been written literally (``${PORT:8000}`` is the
int 8000, ``${DEBUG:true}`` a bool). The ``!env_var`` tag does the same
explicitly; ``!raw_env_var`` substitutes but always keeps a string. A quoted
scalar is never substituted, which is how to write a literal ``${``.

Inside flow collections (``[...]``, ``{...}``) YAML does not allow braces in
plain scalars, so there a reference must be quoted and tagged:
``PORTS: [!env_var "${PORT:80}"]``.

Substitution happens after merging, so a reference in a value that a later
file overrides is never evaluated. The references themselves are parsed in
:mod:`nameko_like.env_references`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nameko_like.config_keys import warn_misspelt_keys
from nameko_like.env_references import substitute
from nameko_like.exceptions import ConfigurationError

if TYPE_CHECKING:
    import yaml

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

#: Tag for a scalar whose references are substituted, then typed as YAML.
ENV_VAR_TAG = "!env_var"
#: Tag for a scalar whose references are substituted and kept a string.
RAW_ENV_VAR_TAG = "!raw_env_var"


# --- YAML loading -------------------------------------------------------------


@dataclass(frozen=True)
class _Deferred:
    """A scalar awaiting substitution, with where it came from."""

    text: str
    raw: bool
    source: str
    line: int = field(compare=False)


def _scalar_type(value: str) -> Any:
    """Type ``value`` as YAML types a plain scalar (int, float, bool, null,
    timestamp, else str), without parsing it as a document, so text after a
    ``#`` or a ``: `` inside a value is kept rather than reinterpreted."""
    import yaml  # lazily: a start without a config file needs no YAML
    loader = yaml.SafeLoader("")
    try:
        # types-PyYAML leaves Resolver.resolve unannotated
        tag = loader.resolve(  # type: ignore[no-untyped-call]
            yaml.ScalarNode, value, (True, False))
        return loader.construct_object(yaml.ScalarNode(tag, value))
    except (yaml.YAMLError, ValueError):
        # e.g. a string shaped like a date that is not a real date.
        return value
    finally:
        loader.dispose()


def _make_loader(source: str) -> type[yaml.SafeLoader]:
    """A SafeLoader subclass that defers ``${...}`` scalars of ``source``."""
    import yaml  # lazily: a start without a config file needs no YAML

    class Loader(yaml.SafeLoader):
        pass

    def construct(raw: bool) -> Callable[[yaml.SafeLoader, yaml.Node], _Deferred]:
        def constructor(loader: yaml.SafeLoader, node: yaml.Node) -> _Deferred:
            text = loader.construct_scalar(node)  # type: ignore[arg-type]
            return _Deferred(text, raw, source, node.start_mark.line + 1)
        return constructor

    Loader.add_constructor(ENV_VAR_TAG, construct(raw=False))
    Loader.add_constructor(RAW_ENV_VAR_TAG, construct(raw=True))
    # Checked for every plain scalar whatever its first character; quoted
    # scalars are never implicitly resolved, which keeps them literal.
    Loader.add_implicit_resolver(ENV_VAR_TAG, _IMPLICIT, None)
    return Loader


class _Implicit:
    """Matches any scalar containing ``${`` (PyYAML wants a ``match``)."""

    @staticmethod
    def match(value: str) -> bool:
        return "${" in value


_IMPLICIT = _Implicit()


def _load_file(path: PathLike) -> dict[Any, Any]:
    import yaml  # lazily: a start without a config file needs no YAML
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as stream:
            text = stream.read()
    except FileNotFoundError:
        raise ConfigurationError(f"{source}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"{source}: cannot read config file: {exc}") from exc
    try:
        data = yaml.load(text, Loader=_make_loader(source))  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        raise ConfigurationError(_describe_yaml_error(source, exc)) from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{source}: invalid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigurationError(
            f"{source}: the top level must be a mapping of config keys, "
            f"not a {type(data).__name__}")
    return data


def _describe_yaml_error(source: str, exc: yaml.MarkedYAMLError) -> str:
    """Where PyYAML found the problem and, when it says, where the construct began.

    A missing ``:`` or an unclosed quote is often reported lines after the
    mistake; PyYAML's context mark points at the line that started the
    construct, which is usually the one to fix, so the message names both
    (on one line: the CLI prints errors as one line).
    """
    mark = exc.problem_mark or exc.context_mark
    where = f"{source}:{mark.line + 1}" if mark else source
    message = f"{where}: invalid YAML: {exc.problem or exc.context or 'malformed YAML'}"
    context_mark = exc.context_mark
    if exc.context and context_mark is not None and exc.problem_mark is not None:
        # PyYAML's buffer ends with a NUL it adds itself
        lines = (context_mark.buffer or "").rstrip("\0").split("\n")
        began = f"line {context_mark.line + 1}"
        if 0 <= context_mark.line < len(lines) and lines[context_mark.line].strip():
            began += f": {lines[context_mark.line].strip()}"
        message += f" ({exc.context} that began at {began})"
    return message


# --- merging and resolving ----------------------------------------------------


def merge(base: Mapping[Any, Any], override: Mapping[Any, Any]) -> dict[Any, Any]:
    """Return ``base`` updated by ``override``: mappings present in both merge
    recursively, any other value in ``override`` replaces. Inputs are not
    changed."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = merge(current, value)
        else:
            merged[key] = value
    return merged


def _key_path(parent: str, key: Any) -> str:
    return f"{parent}.{key}" if parent else str(key)


def _resolve(value: Any, env: Mapping[str, str], key_path: str) -> Any:
    if isinstance(value, _Deferred):
        try:
            text = substitute(value.text, env)
        except ConfigurationError as exc:
            raise ConfigurationError(
                f"{value.source}:{value.line}: key '{key_path}': {exc}") from None
        return text if value.raw else _scalar_type(text)
    if isinstance(value, dict):
        resolved = {}
        for key, item in value.items():
            key = _resolve(key, env, key_path or "<key>")
            resolved[key] = _resolve(item, env, _key_path(key_path, key))
        return resolved
    if isinstance(value, list):
        return [_resolve(item, env, f"{key_path}[{index}]")
                for index, item in enumerate(value)]
    return value


def load_config(paths: PathLike | Iterable[PathLike],
                env: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Load, merge and substitute one or several YAML config files.

    Args:
        paths: a file path, or several merged in order (later ones win).
        env: where ``${VAR}`` references are looked up.

    Raises:
        ConfigurationError: a file is missing, unreadable, not YAML, or not a
            mapping at the top; or a reference is malformed or names an unset
            variable without a default. The message names the file, and the
            line and key where they apply.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    merged: dict[Any, Any] = {}
    sources = []
    for path in paths:
        merged = merge(merged, _load_file(path))
        sources.append(os.fspath(path))
    warn_misspelt_keys(merged, source=", ".join(sources))
    resolved: dict[str, Any] = _resolve(merged, env, "")  # a dict resolves to a dict
    return resolved


# --- command-line overrides and dumping ---------------------------------------


def _type_define(value: str) -> Any:
    # Flow collections are parsed as YAML ("[1, 2]", "{a: 1}"); anything else
    # is typed as a single scalar, so "abc #1" stays whole.
    if value.lstrip().startswith(("[", "{")):
        import yaml  # lazily: a start without a config file needs no YAML
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ConfigurationError(
                f"--define value {value!r} is not valid YAML: {exc}") from None
    if value == "":
        return ""
    return _scalar_type(value)


def _split_define(define: str) -> tuple[str, str]:
    key, sep, value = define.partition("=")
    if not sep or not key.strip():
        raise ConfigurationError(
            f"--define expects KEY=VALUE (e.g. WEB.PORT=9000), got {define!r}")
    return key.strip(), value


def apply_overrides(config: Mapping[str, Any],
                    defines: Iterable[str] | Mapping[str, str]
                    ) -> dict[str, Any]:
    """Return ``config`` with command-line ``--define`` values applied.

    Each define is ``"KEY=VALUE"`` (or a ``{KEY: VALUE}`` mapping entry);
    dots in KEY reach into nested mappings, creating missing ones
    (``WEB.PORT=9000`` sets ``config["WEB"]["PORT"]``). VALUE is typed as
    YAML: ``9000`` is an int, ``true`` a bool, ``[a, b]`` a list. The input
    is not changed.

    Raises:
        ConfigurationError: a define is not ``KEY=VALUE``, or its key passes
            through a value that is not a mapping.
    """
    items = (list(defines.items()) if isinstance(defines, Mapping)
             else [_split_define(define) for define in defines])
    result = merge({}, config)
    for key, raw_value in items:
        names = key.split(".")
        if not all(names):
            raise ConfigurationError(f"--define key {key!r} has an empty part")
        value = _type_define(raw_value) if isinstance(raw_value, str) \
            else raw_value
        target = result
        for depth, name in enumerate(names[:-1]):
            child = target.get(name)
            if child is None:
                child = {}
            elif not isinstance(child, Mapping):
                where = ".".join(names[:depth + 1])
                raise ConfigurationError(
                    f"cannot apply --define {key}: {where} is a "
                    f"{type(child).__name__}, not a mapping")
            # Copy so nested mappings shared with the input stay untouched.
            child = dict(child)
            target[name] = child
            target = child
        target[names[-1]] = value
    return result


def dump_config(config: Mapping[str, Any]) -> str:
    """Return ``config`` as a YAML document, keys in their given order."""
    import yaml  # lazily: a start without a config file needs no YAML
    return yaml.safe_dump(dict(config), default_flow_style=False,
                          sort_keys=False, allow_unicode=True)
