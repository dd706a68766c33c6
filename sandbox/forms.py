"""Stripe's request encoding: application/x-www-form-urlencoded with bracketed nesting."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

_PART = re.compile(r"\[([^\]]*)\]")


def decode(body: str) -> dict:
    """Turn `metadata[k]=v&expand[]=a&items[0][x]=1` into nested dicts and lists."""
    result: dict = {}
    for raw_key, value in parse_qsl(body, keep_blank_values=True):
        head, _, rest = raw_key.partition("[")
        parts = [head] + (_PART.findall("[" + rest) if rest else [])
        _assign(result, parts, value)
    return _listify(result)


def _assign(node: dict, parts: list[str], value: str) -> None:
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "":  # `expand[]=a`: append
            node.setdefault("__list__", []).append(value if last else {})
            if not last:
                node = node["__list__"][-1]
            continue
        if last:
            node[part] = value
        else:
            node = node.setdefault(part, {})


def _listify(node):
    """Turn {"__list__": [...]} and {"0": .., "1": ..} into lists."""
    if not isinstance(node, dict):
        return node
    if set(node) == {"__list__"}:
        return [_listify(item) for item in node["__list__"]]
    if node and all(key.isdigit() for key in node):
        return [_listify(node[key]) for key in sorted(node, key=int)]
    return {key: _listify(value) for key, value in node.items()}
