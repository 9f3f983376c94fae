"""Typed scan verdicts. ``to_json()`` gives exactly the webhook ``spam`` and ``virus`` objects
(DESIGN.md "Webhooks"), with ``required`` added to ``spam``:

``{"verdict": "ham|spam|unscanned", "score": 1.5, "required": 6.0, "engine": "rspamd",
"symbols": [{"name": "R_SPF_ALLOW", "score": -0.2, "options": []}]}`` and
``{"verdict": "clean|infected|unscanned", "engine": "clamav", "signatures": ["Eicar-Test-Signature"]}``.

``failure`` (not in the JSON) says why a configured engine gave no verdict (``unavailable``,
``timeout``, ``protocol_error``, ``too_large``: the :mod:`inbound.scan.errors` names); it is None
when the engine answered, when no engine is configured, and when a sender list made the scan moot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

SpamVerdict = Literal["ham", "spam", "unscanned"]
VirusVerdict = Literal["clean", "infected", "unscanned"]
ListAction = Literal["allow", "block"]

MAX_SYMBOLS = 100          # symbols kept per verdict (highest absolute score first)
MAX_SYMBOL_OPTIONS = 8     # options kept per symbol
MAX_TEXT = 200             # characters kept per name or option


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"


@dataclass(frozen=True)
class SpamSymbol:
    """One rule that matched: its name, its score contribution (None when the engine does not say
    per rule, as spamd's SYMBOLS answer), and the engine's options (detail strings)."""

    name: str
    score: float | None = None
    options: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "score": self.score, "options": list(self.options)}


def bounded_symbols(symbols: list[SpamSymbol]) -> tuple[SpamSymbol, ...]:
    """Symbols ordered by absolute score (then name), clipped to the module's limits."""
    ordered = sorted(symbols, key=lambda s: (-abs(s.score or 0.0), s.name))[:MAX_SYMBOLS]
    return tuple(SpamSymbol(_clip(s.name), s.score, tuple(_clip(o) for o in s.options[:MAX_SYMBOL_OPTIONS]))
                 for s in ordered)


@dataclass(frozen=True)
class SpamCheck:
    """A spam verdict. ``score`` and ``required`` are in the engine's points; ``required`` is the
    threshold the engine reports (rspamd: ``required_score``, the score of its ``reject`` action;
    spamd: ``required_score``, its spam threshold)."""

    verdict: SpamVerdict = "unscanned"
    score: float = 0.0
    required: float | None = None
    engine: str | None = None
    symbols: tuple[SpamSymbol, ...] = ()
    failure: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "score": self.score, "required": self.required, "engine": self.engine,
                "symbols": [s.to_json() for s in self.symbols]}


@dataclass(frozen=True)
class VirusCheck:
    """A virus verdict: ``signatures`` names what matched (``infected`` only)."""

    verdict: VirusVerdict = "unscanned"
    engine: str | None = None
    signatures: tuple[str, ...] = ()
    failure: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "engine": self.engine, "signatures": list(self.signatures)}


@dataclass(frozen=True)
class SenderListMatch:
    """A sender allow- or block-list entry that matched (:mod:`inbound.scan.lists`).

    ``entry`` is the list entry (``user@example.org``, ``example.org`` or ``.example.org``),
    ``sender`` the address it matched, ``domain`` the receiving domain whose list it is."""

    action: ListAction
    entry: str
    sender: str
    domain: str = field(default="")
