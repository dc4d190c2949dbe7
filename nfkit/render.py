"""One jinja2 Environment for every generated file; templates only lay out text.

Templates are searched, first match wins, in:

1. the directory given to :func:`environment` / :func:`render` (``template_dir``), or the
   ``NFKIT_TEMPLATES`` environment variable: a user's own copy (it must be a directory, else
   :class:`~nfkit.errors.ConfigError`);
2. ``nfkit/templates`` inside the installed package (the wheel force-includes ``templates/``);
3. the repository's top-level ``templates/`` in a source checkout.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from nfkit.errors import ConfigError

_PACKAGE = Path(__file__).resolve().parent


def template_dirs(template_dir: str | Path | None = None) -> tuple[Path, ...]:
    """The directories searched for templates, in order.

    Raise :class:`~nfkit.errors.ConfigError` when ``template_dir`` (or ``NFKIT_TEMPLATES``) is
    not a directory: the user's templates would otherwise be ignored without a word.
    """
    dirs: list[Path] = []
    what = "template directory" if template_dir else "NFKIT_TEMPLATES directory"
    chosen = template_dir or os.environ.get("NFKIT_TEMPLATES")
    if chosen:
        user = Path(chosen)
        if not user.is_dir():
            problem = "is not a directory" if user.exists() else "does not exist"
            raise ConfigError(f"{what} {user} {problem}")
        dirs.append(user)
    for candidate in (_PACKAGE / "templates", _PACKAGE.parent / "templates"):
        if candidate.is_dir():
            dirs.append(candidate)
    return tuple(dirs)


@cache
def _environment(dirs: tuple[Path, ...]) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(d) for d in dirs]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def environment(template_dir: str | Path | None = None) -> jinja2.Environment:
    """Return the (cached) Environment for ``template_dir`` plus the built-in templates."""
    return _environment(template_dirs(template_dir))


def render(name: str, template_dir: str | Path | None = None, **context: Any) -> str:
    """Render template ``name`` (e.g. ``nftables/ruleset.nft.j2``) with ``context``."""
    return environment(template_dir).get_template(name).render(**context)
