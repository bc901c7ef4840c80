"""Java properties files (server.properties, a tool's --command-config), read as Kafka reads
them: java.util.Properties.load. Text in, pairs out; no file access, so the broker's settings
and the admin client read alike.
"""

from __future__ import annotations

import re


def decode_properties(data: bytes) -> dict[str, str]:
    """The pairs of a properties file's bytes. Kafka reads them as Properties.load from a
    stream reads them, ISO-8859-1; bytes that are valid UTF-8, as editors write today, are read
    as UTF-8: the one difference from Kafka, which would read their non-ASCII as mojibake."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("iso-8859-1")
    return parse_properties(text)


# java.util.Properties' line terminators (\n, \r, \r\n) and white space (space, tab, form
# feed): Python's splitlines and strip know more (\v, \x1c, NEL, U+2028, NBSP), which Java
# keeps as text.
_NATURAL_LINES = re.compile(r"\r\n|\r|\n")
_PROPERTY_SPACE = " \t\f"
# What String.trim drops from either end: every character up to U+0020.
_TRIMMED = "".join(map(chr, range(0x21)))


def parse_properties(text: str) -> dict[str, str]:
    """Key/value pairs of a Java properties file, read as java.util.Properties.load reads them
    (its LineReader, load0 and loadConvert, JDK 17), each value then trimmed as Kafka's
    ConfigDef.parseType trims every value it parses.

    A natural line ends at \\n, \\r or \\r\\n; its leading spaces, tabs and form feeds are
    dropped. A blank line, or one whose first character is `#` or `!`, starts no logical line
    (a comment never continues). A line ending in an odd number of backslashes continues on
    the next, that backslash dropped; an even number are escaped backslashes. The key ends at
    the first unescaped `=`, `:` or white space; white space, one `=` or `:`, and white space
    again are skipped before the value. Escapes are resolved in keys and values alike; a
    malformed \\uXXXX is a ValueError, as it is Properties.load's IllegalArgumentException."""
    pairs: dict[str, str] = {}
    logical = ""
    for natural in _NATURAL_LINES.split(text):
        line = natural.lstrip(_PROPERTY_SPACE)
        # A logical line still empty (nothing yet, or a lone continuing backslash) is at its
        # start, where LineReader skips blank lines and comments.
        if not logical and (not line or line[0] in "#!"):
            continue
        if (len(line) - len(line.rstrip("\\"))) % 2:
            logical += line[:-1]
            continue
        key, value = _split_property(logical + line)
        pairs[key] = value.strip(_TRIMMED)
        logical = ""
    if logical:  # a continuation at the end of the file: only its backslash is dropped
        key, value = _split_property(logical)
        pairs[key] = value.strip(_TRIMMED)
    return pairs


def _split_property(line: str) -> tuple[str, str]:
    """Properties.load0: the key and the value of one logical line, escapes resolved."""
    key_end = value_start = len(line)
    separated = escaped = False
    for index, char in enumerate(line):
        if not escaped and (char in "=:" or char in _PROPERTY_SPACE):
            key_end, value_start, separated = index, index + 1, char in "=:"
            break
        escaped = char == "\\" and not escaped
    while value_start < len(line):
        char = line[value_start]
        if char not in _PROPERTY_SPACE:
            if separated or char not in "=:":
                break
            separated = True
        value_start += 1
    return _unescape(line[:key_end]), _unescape(line[value_start:])



_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
_HEX = frozenset("0123456789abcdefABCDEF")


def _unescape(text: str) -> str:
    """`text` with a properties file's escapes resolved as Properties.loadConvert resolves
    them: \\uXXXX (a UTF-16 unit: a surrogate pair makes one character), \\t \\n \\r \\f,
    and a backslash before any other character stands for it. `text` never ends in an
    unescaped backslash: a logical line's is a continuation, and a key ends before one."""
    if "\\" not in text:
        return text
    chars: list[str] = []
    index = 0
    while index < len(text):
        char, index = text[index], index + 1
        if char != "\\":
            chars.append(char)
            continue
        char, index = text[index], index + 1
        if char == "u":
            digits = text[index:index + 4]
            if len(digits) < 4 or not _HEX.issuperset(digits):
                raise ValueError(f"malformed \\uxxxx escape in {text}")
            chars.append(chr(int(digits, 16)))
            index += 4
        else:
            chars.append(_ESCAPES.get(char, char))
    return "".join(chars).encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
