"""Names a user typed that name nothing: the error that says so, with the nearest names. Pure.

Every command that takes a node, module, variant, component, compose ID, run ID, release or
branch raises `unknown(KIND, name, candidates)` when the name is not one of them:
`error[unknown-KIND]: no KIND 'repo:Servr'` and the hint `did you mean repo:Server?` (difflib's
ratio, as `get_close_matches` computes it). A candidate `kind:NAME` (a node id) is compared
without its kind when the name typed has none, so `Servr` finds `repo:Server`, and by its name
alone when both have the same kind, so `repo:Servr` does not find `repo:Cloud` for their `repo:`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from difflib import SequenceMatcher

from pipeline.core.errors import InvalidInput

SUGGESTED = 3  # names a hint offers at most
CUTOFF = 0.6  # difflib's default: below it a name is not "close"
LISTED = 12  # with no close name, a hint lists the candidates when there are at most this many

# How a message names each kind of thing (the error's code is `unknown-<kind>`).
WORDS = {
    "node": "node",
    "module": "module",
    "variant": "variant",
    "component": "component",
    "compose": "compose",
    "run": "run",
    "release": "release",
    "branch": "branch",
    "compose-type": "compose type",
    "source": "source",
    "package": "package",
    "build": "build",
    "name": "node, module or component named",
}


def nearest(
    name: str,
    candidates: Iterable[str],
    *,
    forms: Mapping[str, Iterable[str]] | None = None,
    cutoff: float = CUTOFF,
) -> list[str]:
    """The candidates at least `cutoff` close to `name`, closest first (ties in name order),
    those within a quarter of the rest of the way of the closest only; one that differs only in
    case comes before all others. `forms` gives other names a candidate is known by (a module
    `httpd:2.4`: `httpd`): the closest form counts. Long names that share most of their text
    (compose IDs) need a higher cutoff."""
    known = forms or {}
    pool = sorted(set(candidates) - {name})
    folded = [c for c in pool if any(f.casefold() == name.casefold() for f in (c, *known.get(c, ())))]
    scored = sorted(
        (-best, c)
        for c in pool
        if c not in folded
        and (best := max(_ratio(name, f, cutoff) for f in (c, *known.get(c, ())))) >= cutoff
    )
    close = [c for score, c in scored if score <= scored[0][0] + (1 - cutoff) / 4]
    return [*folded, *close][:SUGGESTED]


def _ratio(name: str, candidate: str, cutoff: float) -> float:
    """difflib's ratio of two names; of their parts after `kind:` when both have the same kind
    (`repo:Servr`, `repo:Cloud` share nothing that matters) or the name has none (`Servr`)."""
    kind, sep, rest = candidate.partition(":")
    typed_kind, typed_sep, typed_rest = name.partition(":")
    if sep and rest and kind.isalpha():
        if typed_sep and typed_kind == kind:
            name, candidate = typed_rest, rest
        elif not typed_sep:
            candidate = rest
    if name == candidate:
        return 1.0
    matcher = SequenceMatcher(None, candidate, name)
    if matcher.real_quick_ratio() < cutoff or matcher.quick_ratio() < cutoff:
        return 0.0
    return matcher.ratio()


def did_you_mean(
    name: str,
    candidates: Iterable[str],
    *,
    forms: Mapping[str, Iterable[str]] | None = None,
    cutoff: float = CUTOFF,
) -> str:
    """`did you mean repo:Server?` (or `… X or Y?`); "" when no candidate is close."""
    found = nearest(name, candidates, forms=forms, cutoff=cutoff)
    if not found:
        return ""
    return (
        "did you mean " + (found[0] if len(found) == 1 else ", ".join(found[:-1]) + " or " + found[-1]) + "?"
    )


def unknown(
    kind: str,
    name: str,
    candidates: Iterable[str],
    *,
    forms: Mapping[str, Iterable[str]] | None = None,
    where: str = "",
    listing: str = "",
    cutoff: float = CUTOFF,
) -> InvalidInput:
    """The error for a `kind` named `name` that is not among `candidates` (exit status 2).

    `where` follows the name in the message (" at HEAD"); the hint is the nearest candidates,
    else the candidates themselves when there are few, else `listing` (how to list them)."""
    pool = sorted(set(candidates))
    hint = did_you_mean(name, pool, forms=forms, cutoff=cutoff)
    if not hint and 0 < len(pool) <= LISTED:
        hint = f"{_plural(WORDS[kind])}: " + ", ".join(pool)
    elif not hint:
        hint = listing
    return InvalidInput(f"no {WORDS[kind]} {name!r}{where}", hint=hint, code=f"unknown-{kind}")


def _plural(word: str) -> str:
    return "names" if word.endswith("named") else ("branches" if word == "branch" else f"{word}s")
