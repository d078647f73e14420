"""Whether text from outside is Unicode that can be stored and written back: no lone surrogates.

JSON may spell half of a UTF-16 surrogate pair on its own (``"\\ud800"``), and Python's
decoder turns it into a ``str`` holding a code point that no UTF-8 encoder writes: stored, it
fails later and far away (the database driver, the evidence seal, the error handler echoing
it). Every text from outside is checked here before anything keeps it: HTTP request bodies
(``vbank.api.bodylimit``) and signaling messages.
"""

from __future__ import annotations

import json
import re

#: the error code a request or message with such text is refused with (as on the socket)
BAD_TEXT = "bad_text"

# A surrogate left in a decoded str is a lone one: a valid pair decodes to one code point.
_SURROGATE = re.compile("[\ud800-\udfff]")
# How JSON bytes that are valid UTF-8 can spell a surrogate: only as an escape.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def valid_str(text: str) -> bool:
    """Whether ``text`` holds no lone surrogate."""
    return _SURROGATE.search(text) is None


def valid_text(obj: object) -> bool:
    """Whether every string in ``obj`` (decoded JSON: dicts, lists, strings, numbers…), keys
    included, is valid Unicode. Walks without recursion: no nesting overflows the stack."""
    pending = [obj]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item) is not None:
                return False
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return True


def valid_json_text(body: bytes) -> bool:
    """Whether a JSON body is UTF-8 (RFC 8259) and every string in it valid Unicode.

    A body that does not parse counts as valid here: saying what is wrong with it is the
    parser's job. Only a body with an escape that may spell a surrogate is parsed at all."""
    try:
        body.decode("utf-8")  # strict: encoded surrogates and stray bytes fail
    except UnicodeDecodeError:
        return False
    if _SURROGATE_ESCAPE.search(body) is None:
        return True
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        return True
    return valid_text(decoded)
