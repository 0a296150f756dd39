"""Objective strings (``"blocks.8:5"``, ``"logits:309"``, ``"a:1 - 0.5*a:2"``): parsed by a small
grammar, never evaluated."""

from __future__ import annotations

import re

from ...errors import ObjectiveSyntaxError, excerpt
from ..layers.model_info import LOGITS
from .base import Objective, Sum
from .units import Channel, ClassLogit, ClassToken, DeepDream, Neuron

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)\s*\*"
    r"|(?P<op>[+-])"
    r"|(?P<atom>[A-Za-z0-9_][\w.]*(?::\d+(?:@(?:\d+,\d+|cls))?)?))"
)
GRAMMAR = (
    "'layer' (DeepDream), 'layer:channel', 'layer:channel@x,y' (neuron), 'layer:channel@cls' "
    "(class token), 'logits:class', "
    "combined with + and - and optional 'weight*' prefixes, e.g. 'blocks.8:5 - 0.5*blocks.8:7'"
)


def _atom(text: str, logits_layer: str) -> Objective:
    layer, _, rest = text.partition(":")
    if not rest:
        return DeepDream(layer)
    index, _, pos = rest.partition("@")
    if len(index) > 9 or any(len(v) > 9 for v in pos.split(",")):
        raise ObjectiveSyntaxError(f"A unit or position number in {excerpt(text)} has more than 9 digits.")
    if pos == "cls":
        return ClassToken(layer, int(index))
    if pos:
        x, y = (int(v) for v in pos.split(","))
        return Neuron(layer, int(index), x=x, y=y)
    if layer == logits_layer:
        return ClassLogit(int(index), layer=layer)
    return Channel(layer, int(index))


MAX_OBJECTIVE_CHARS = 4_000  # an objective string of 100 weighted terms is about 2,000 characters
MAX_OBJECTIVE_TERMS = 128  # each term costs a reduction per step; far beyond any hand-written sum


def parse_objective(text: str, logits_layer: str = LOGITS) -> Objective:
    """Parse an objective string (never evaluated as code). Grammar: see ``GRAMMAR``. Strings
    longer than ``MAX_OBJECTIVE_CHARS`` or with more than ``MAX_OBJECTIVE_TERMS`` terms are
    refused before any work (messages quote a short excerpt of the text)."""
    if not isinstance(text, str) or not text.strip():
        raise ObjectiveSyntaxError(f"Empty objective. Valid forms: {GRAMMAR}.")
    if len(text) > MAX_OBJECTIVE_CHARS:
        raise ObjectiveSyntaxError(
            f"The objective string {excerpt(text)} is longer than the {MAX_OBJECTIVE_CHARS:,} characters "
            "accepted; build large sums in Python (Channel(...) + ...) instead."
        )
    pos, sign, weight = 0, 1.0, None
    terms: list[tuple[float, Objective]] = []
    expect_term = True
    stripped = text.rstrip()
    while pos < len(stripped):
        m = _TOKEN.match(stripped, pos)
        if m is None or m.end() == pos:
            raise ObjectiveSyntaxError(
                f"Cannot parse objective {excerpt(text)} at character {pos + 1} ({stripped[pos : pos + 10]!r}). Valid forms: {GRAMMAR}."
            )
        pos = m.end()
        if m.group("op"):
            if not expect_term:
                sign, expect_term = (1.0 if m.group("op") == "+" else -1.0), True
            elif weight is None and m.group("op") == "-":
                sign = -sign
            else:
                raise ObjectiveSyntaxError(
                    f"Unexpected {m.group('op')!r} in objective {excerpt(text)}. Valid forms: {GRAMMAR}."
                )
        elif m.group("num"):
            if not expect_term or weight is not None:
                raise ObjectiveSyntaxError(f"Unexpected weight in objective {excerpt(text)}. Valid forms: {GRAMMAR}.")
            weight = float(m.group("num"))
        else:
            if not expect_term:
                raise ObjectiveSyntaxError(
                    f"Missing + or - between terms in objective {excerpt(text)}. Valid forms: {GRAMMAR}."
                )
            if len(terms) == MAX_OBJECTIVE_TERMS:
                raise ObjectiveSyntaxError(
                    f"The objective {excerpt(text)} has more than {MAX_OBJECTIVE_TERMS} terms, the most accepted."
                )
            terms.append((sign * (1.0 if weight is None else weight), _atom(m.group("atom"), logits_layer)))
            sign, weight, expect_term = 1.0, None, False
    if expect_term:
        raise ObjectiveSyntaxError(f"Objective {excerpt(text)} ends without a term. Valid forms: {GRAMMAR}.")
    if len(terms) == 1 and terms[0][0] == 1.0:
        return terms[0][1]
    return Sum(terms)


def as_objective(obj: Objective | str, logits_layer: str = LOGITS) -> Objective:
    if isinstance(obj, Objective):
        return obj
    if isinstance(obj, str):
        return parse_objective(obj, logits_layer)
    raise ObjectiveSyntaxError(f"An objective must be an Objective or a string ({GRAMMAR}), not {type(obj).__name__}.")
