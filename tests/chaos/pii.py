"""
Personal data the chaos checkouts carry on purpose, and the scan that looks for it in our logs.

A stand-in until `tests/pii.py` (issue 12's log scan of the whole suite) lands: same names, `PLANTED`
and `find_pii(text) -> list[str]`, so the chaos run can be pointed at that module by changing one import.
The values are distinctive enough that a hit is never a coincidence: a log line holding one of them
came from a request or a provider object, which STYLE.md says we never log.
"""

from __future__ import annotations

import re

CARD_NUMBER = "4000 0566 5566 5556"  # Luhn-valid, written as a customer would type it into a note
PLANTED = {
    "email": "ana.plantedchaos@example.org",
    "card_number": CARD_NUMBER,
    "description": "Birthday gift for Ana Plantedchaos",
    "name": "Ana Plantedchaos",
    "address": "17 Plantedchaos Lane, Leeds LS1 4AP",
    "phone": "+44 7700 900461",
}
# The card number as logs might render it: digits only, or grouped with dashes.
_CARD_DIGITS = re.sub(r"\D", "", CARD_NUMBER)
_CARD = re.compile(r"[ -]?".join(_CARD_DIGITS))
_WORD = re.compile("plantedchaos", re.IGNORECASE)  # the surname every planted text value carries


def find_pii(text: str) -> list[str]:
    """Return the planted values (by name) found in `text`: exact, any case, or the card in any grouping."""
    found = [name for name, value in PLANTED.items() if name != "card_number" and value.lower() in text.lower()]
    if _CARD.search(text):
        found.append("card_number")
    if not found and _WORD.search(text):
        found.append("fragment")  # part of a planted value, cut or re-encoded
    return found
