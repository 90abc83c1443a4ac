"""The API's one reading of a JSON request body: whatever arrives, a value every service
and PostgreSQL can take, or Refused naming the field (the API answers 400).

Refused: a body that is not UTF-8 JSON; NaN, Infinity and numbers too large for a float
(PostgreSQL's jsonb has none of them); strings or keys holding a lone surrogate
("\\ud800") or a NUL, which no UTF-8 text column can store, or another control
character (tab and line breaks aside); nesting deeper than
MAX_DEPTH (a body of 100,000 "[" would otherwise exhaust the parser's stack).
"""
import json
import math

from flask import request

from portal.services.errors import Refused

MAX_DEPTH = 32


def json_body():
    """The request's JSON body, checked (None when it has none)."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("body: send UTF-8 encoded JSON.", "body") from None
    try:
        data = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise Refused(f"body: nested more than {MAX_DEPTH} levels deep.", "body") from None
    except ValueError as exc:
        raise Refused(f"body: send a JSON object; this is not valid JSON ({exc}).", "body") from None
    problem = _first_problem(data)
    if problem is not None:
        path, message = problem
        raise Refused(f"{path or 'body'}: {message}", path or "body")
    return data


def _no_constant(name):
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is too large a number")
    return value


def _bad_text(value):
    if "\x00" in value:
        return "text may not contain a NUL character (\\u0000)."
    if any(ord(ch) < 32 and ch not in "\t\n\r" or ord(ch) == 127 for ch in value):
        return "text may not contain control characters."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "text may not contain a lone surrogate (\\ud800-\\udfff)."
    return None


def _first_problem(data):
    """(path, message) of the first value that cannot be stored, or None. Iterative, so
    that depth is counted rather than recursed."""
    stack = [("", data, 0)]
    while stack:
        path, value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return path, f"nested more than {MAX_DEPTH} levels deep."
        if isinstance(value, str):
            problem = _bad_text(value)
            if problem:
                return path, problem
        elif isinstance(value, dict):
            for key, item in value.items():
                key_path = f"{path}.{key}" if path else key
                problem = _bad_text(key)
                if problem:
                    return path or "body", f"a key: {problem}"
                stack.append((key_path, item, depth + 1))
        elif isinstance(value, list):
            stack.extend((f"{path}[{n}]", item, depth + 1) for n, item in enumerate(value))
    return None
