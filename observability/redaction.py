"""Passwords in URLs never reach a log line: `postgresql://user:PASSWORD@host` is written
`postgresql://user:***@host`.

Applied by the one log formatter (`observability.log_format`) to every message, field and
traceback, and by the commands that print an error themselves, so a store URL in an
exception message (asyncpg's, or a refused URL) is safe to log.
"""

from __future__ import annotations

import re
from typing import Final

# scheme://user:password@ — the password is anything up to the last `@` before the host
# (an unescaped `@` in a password is common in hand-written URLs), but never past a quote:
# a JSON log line is redacted whole, and a match must not run into the next field.
_USERINFO_PASSWORD: Final = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s\"]*):(?P<password>[^\s/?#\"]*)@"
)
# libpq's key=value form: password=secret (quoted or not).
_KEYWORD_PASSWORD: Final = re.compile(
    r"(?P<head>\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s\"]+)", re.IGNORECASE
)
MASK: Final = "***"


def redact(text: str) -> str:
    """`text` with every URL password and `password=` value replaced by `***`."""
    if "@" not in text and "password" not in text.lower():
        return text  # the common case: nothing to look for
    text = _USERINFO_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@", text)
    return _KEYWORD_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", text)
