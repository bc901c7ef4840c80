"""JAAS login module configuration as Kafka's `sasl.jaas.config` holds it.

`<LoginModule class> <flag> [key=value ...];` — values are bare words or double-quoted
strings with backslash escapes, as Kafka's JaasConfig reads them with a StreamTokenizer.
A `sasl.jaas.config` value holds exactly one login module (Kafka refuses more).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

_FLAGS = ("required", "requisite", "sufficient", "optional")
_TOKEN = re.compile(r'\s*(?:(?P<quoted>"(?:[^"\\]|\\.)*")|(?P<word>[^\s=;"]+)|(?P<symbol>[=;]))', re.S)


class JaasError(ValueError):
    """A `sasl.jaas.config` that does not parse; the message names no option value."""


@dataclass(slots=True, frozen=True)
class LoginModule:
    name: str
    flag: str
    options: Mapping[str, str] = field(repr=False)

    def plain_users(self) -> dict[str, str]:
        """PlainLoginModule's users: `user_<name>="<password>"` options (PlainServerCallbackHandler)."""
        return {key[len("user_"):]: value for key, value in self.options.items() if key.startswith("user_")}


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise JaasError(f"unexpected character at position {position} of the JAAS config")
        position = match.end()
        if match["quoted"] is not None:
            tokens.append(("value", re.sub(r"\\(.)", r"\1", match["quoted"][1:-1], flags=re.S)))
        elif match["word"] is not None:
            tokens.append(("word", match["word"]))
        else:
            tokens.append(("symbol", match["symbol"]))
    return tokens


def parse_jaas_config(text: str) -> LoginModule:
    """The one login module of a `sasl.jaas.config` value."""
    tokens = _tokens(text)
    modules: list[LoginModule] = []
    index = 0
    while index < len(tokens):
        if index + 1 >= len(tokens) or tokens[index][0] != "word" or tokens[index + 1][0] != "word":
            raise JaasError("a JAAS login module is `<class> <flag> key=value ...;`")
        name, flag = tokens[index][1], tokens[index + 1][1].lower()
        if flag not in _FLAGS:
            raise JaasError(f"invalid JAAS login module control flag {tokens[index + 1][1]!r}")
        index += 2
        options: dict[str, str] = {}
        while True:
            if index >= len(tokens):
                raise JaasError("the JAAS login module is not terminated by ';'")
            if tokens[index] == ("symbol", ";"):
                index += 1
                break
            if index + 2 >= len(tokens) or tokens[index][0] != "word" or tokens[index + 1] != ("symbol", "=") or tokens[index + 2][0] == "symbol":
                raise JaasError("JAAS login module options are key=value pairs")
            options[tokens[index][1]] = tokens[index + 2][1]
            index += 3
        modules.append(LoginModule(name, flag, options))
    if len(modules) != 1:
        raise JaasError(f"JAAS config property contains {len(modules)} login modules, should be 1 module")
    return modules[0]
