"""``${VAR}`` and ``${VAR:default}`` references to environment variables.

Parsed into literal text and references, then evaluated against an
environment; a default may hold references of its own, evaluated only when
the outer variable is unset. :mod:`nameko_like.config_loader` substitutes
them in YAML config files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from nameko_like.exceptions import ConfigurationError

@dataclass(frozen=True)
class _Ref:
    """A parsed ``${name:default}``; ``default`` is None when absent."""

    name: str
    default: tuple[_Part, ...] | None


_Part = str | _Ref


class _SyntaxProblem(ConfigurationError):
    """Internal: a malformed reference (reported with file and key)."""


class _MissingVariable(ConfigurationError):
    """Internal: a required variable is unset (reported with file and key)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _is_name(text: str) -> bool:
    return bool(text) and (text[0].isalpha() or text[0] == "_") and all(
        char.isalnum() or char == "_" for char in text)


def _parse(text: str, pos: int = 0,
           nested: bool = False) -> tuple[tuple[_Part, ...], int]:
    """Parse ``text`` from ``pos`` into literal strings and references.

    Inside a default (``nested``), parsing stops at the ``}`` that closes it
    and the returned position points just past that brace.
    """
    parts: list[_Part] = []
    literal: list[str] = []
    while pos < len(text):
        if text.startswith("${", pos):
            end = pos + 2
            while end < len(text) and text[end] not in ":}":
                end += 1
            name = text[pos + 2:end]
            if end >= len(text):
                raise _SyntaxProblem(f"unterminated '${{' in {text!r}")
            if not _is_name(name):
                raise _SyntaxProblem(
                    f"invalid environment variable name {name!r} in {text!r}")
            default: tuple[_Part, ...] | None = None
            if text[end] == ":":
                default, pos = _parse(text, end + 1, nested=True)
            else:
                pos = end + 1
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_Ref(name, default))
        elif nested and text[pos] == "}":
            break
        else:
            literal.append(text[pos])
            pos += 1
    else:
        if nested:
            raise _SyntaxProblem(f"unterminated '${{' in {text!r}")
    if literal:
        parts.append("".join(literal))
    return tuple(parts), pos + 1 if nested else pos


def _evaluate(parts: tuple[_Part, ...], env: Mapping[str, str]) -> str:
    pieces = []
    for part in parts:
        if isinstance(part, str):
            pieces.append(part)
        elif part.name in env:
            pieces.append(env[part.name])
        elif part.default is not None:
            # Defaults are evaluated only when needed, so a nested default
            # may name a variable that is unset whenever the outer one is set.
            pieces.append(_evaluate(part.default, env))
        else:
            raise _MissingVariable(part.name)
    return "".join(pieces)


def substitute(text: str, env: Mapping[str, str]) -> str:
    """Return ``text`` with every ``${VAR}`` / ``${VAR:default}`` replaced.

    Raises:
        ConfigurationError: a reference is malformed or names an unset
            variable without a default.
    """
    try:
        parts, _ = _parse(text)
        return _evaluate(parts, env)
    except _SyntaxProblem as exc:
        raise ConfigurationError(str(exc)) from None
    except _MissingVariable as exc:
        raise ConfigurationError(
            f"environment variable {exc.name} is not set and has no default") from None
