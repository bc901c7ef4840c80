"""A server.properties is read as Kafka reads it, with java.util.Properties.load: escaped
separators in keys, white space as a separator, backslash continuations counted in pairs,
\\uXXXX escapes, `!` comments. Each case's expected pairs are what Java's own Properties
loads from the same bytes (checked below against the JDK on PATH, when there is one),
values then trimmed as Kafka's ConfigDef.parseType trims them; one case runs `ottla serve`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from ottla.server.config import ConfigError, load_properties
from ottla.wire.properties import parse_properties
from unavailable import unavailable

# (properties text, the pairs Kafka's configuration sees)
CASES: list[tuple[str, dict[str, str]]] = [
    # Escaped separators belong to the key.
    ("a\\=b=c\na\\:b:d\na\\ b e\n", {"a=b": "c", "a:b": "d", "a b": "e"}),
    # White space alone separates; then one `=` or `:` more is skipped, not a second.
    ("key value\ntabbed\t\tv\nspaced \f= w\ntwice = = x\ncolon :: y\n", {"key": "value", "tabbed": "v", "spaced": "w", "twice": "= x", "colon": ": y"}),
    # An odd number of trailing backslashes continues the line, an even number does not.
    ("odd=a\\\\\\\n  b\neven=a\\\\\nnext=c\n", {"odd": "a\\b", "even": "a\\", "next": "c"}),
    # The continued line's leading spaces, tabs and form feeds are dropped, its own kept.
    ("fruits apple, \\\n \t\f banana, \\\n    pear\n", {"fruits": "apple, banana, pear"}),
    # `#` and `!` comment lines, indented or not; a comment's backslash continues nothing, and
    # a continued line starting with `#` is not a comment.
    ("# one \\\n  ! two\\\nk=v\nhash=a\\\n  #b\n", {"k": "v", "hash": "a#b"}),
    # A blank line ends a continuation.
    ("k=a\\\n\nnext=b\n", {"k": "a", "next": "b"}),
    # A lone backslash continues into nothing: the next line is still a new one.
    ("\\\n# comment\nk=v\n", {"k": "v"}),
    # \uXXXX in keys and values (a surrogate pair is one character), the named escapes, and a
    # backslash before any other character standing for it.
    ("\\u006bey=\\u0041\\u00e9\\ud83d\\ude00\nesc=a\\tb\\nc\\zd\\be\\\\f\n", {"key": "A\u00e9\U0001f600", "esc": "a\tb\ncz" + "dbe\\f"}),
    # \r and \r\n end lines too; \v and NBSP are neither line ends nor white space to Java.
    ("a=1\rb=2\r\nc=3\\\r\n  4\nv=x\x0by\n\xa0n=5\n", {"a": "1", "b": "2", "c": "34", "v": "x\x0by", "\xa0n": "5"}),
    # A key alone has an empty value; an empty key is a key; the last of a key's lines wins.
    ("cheeses\n=v\nk=1\nk=2\n", {"cheeses": "", "": "v", "k": "2"}),
    # A backslash at the very end of the file is dropped.
    ("k=v\\", {"k": "v"}),
    # Trailing white space, even escaped, is trimmed as ConfigDef trims a value.
    ("padded = v  \nescaped=w\\ \\t\n", {"padded": "v", "escaped": "w"}),
]


@pytest.mark.parametrize("text, expected", CASES)
def test_properties_are_read_as_java_reads_them(text, expected):
    assert parse_properties(text) == expected


def test_a_malformed_unicode_escape_is_refused(tmp_path):
    # Properties.load throws IllegalArgumentException("Malformed \\uxxxx encoding.").
    for text in ("k=\\u00g1\n", "k=\\u12\n"):
        properties = tmp_path / "server.properties"
        properties.write_text(text)
        with pytest.raises(ConfigError, match="malformed"):
            load_properties(properties)


def _java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    return str(Path(home) / "bin" / "java") if home else shutil.which("java")


_DUMP = """
import java.io.*;
import java.util.*;
public class Dump {
    public static void main(String[] args) throws Exception {
        for (String path : args) {
            Properties properties = new Properties();
            try (InputStream in = new FileInputStream(path)) { properties.load(in); }
            StringJoiner pairs = new StringJoiner(",", "{", "}");
            for (String key : properties.stringPropertyNames()) pairs.add(quote(key) + ":" + quote(properties.getProperty(key)));
            System.out.println(pairs);
        }
    }
    static String quote(String text) {
        StringBuilder quoted = new StringBuilder("\\"");
        for (char c : text.toCharArray()) quoted.append(String.format("\\\\u%04x", (int) c));
        return quoted.append('"').toString();
    }
}
"""


@pytest.mark.external
def test_the_expected_pairs_are_javas(tmp_path):
    """The cases' expectations are java.util.Properties.load's own, from the bytes Kafka's
    Utils.loadProps gives it (a stream: ISO-8859-1), with String.trim on each value."""
    java = _java()
    if java is None:
        unavailable("no JDK on PATH or in JAVA_HOME")
    source = tmp_path / "Dump.java"
    source.write_text(_DUMP)
    files = []
    for index, (text, _) in enumerate(CASES):
        files.append(tmp_path / f"case{index}.properties")
        files[-1].write_bytes(text.encode("iso-8859-1"))
    done = subprocess.run([java, str(source), *map(str, files)], capture_output=True, text=True, timeout=120, check=True)
    loaded = [json.loads(line) for line in done.stdout.splitlines()]
    assert [{key: value.strip("".join(map(chr, range(0x21)))) for key, value in pairs.items()} for pairs in loaded] == [
        expected for _, expected in CASES
    ]


def test_serve_reads_the_file_as_kafka_does(tmp_path):
    properties = tmp_path / "server.properties"
    # A form feed separates a key from its value (Python's splitlines would end the line
    # there); `!` is a comment; a key may be spelled with escapes.
    properties.write_text("listeners PLAINTEXT://127.0.0.1:0\n! Kafka's other comment\nmessage.max.bytes\f2048\nnum\\u002Epartitions : 3\n")
    process = subprocess.Popen([sys.executable, "-m", "ottla", "serve", "--memory", "--config", str(properties)], stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        before = []
        for line in process.stderr:
            if line.startswith("ottla ready"):
                break
            before.append(line)
        else:
            pytest.fail(f"ottla serve stopped: {before}")
        threading.Thread(target=process.stderr.read, daemon=True).start()
        admin = KafkaAdminClient(bootstrap_servers=line.split()[2].split("=", 1)[1])
        try:
            (broker,) = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1")], config_filter="all")["broker"].values()
        finally:
            admin.close()
        for name, value in (("message.max.bytes", "2048"), ("num.partitions", "3")):
            assert (broker[name]["value"], broker[name]["config_source"]) == (value, "STATIC_BROKER_CONFIG")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
