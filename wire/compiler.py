"""Specialised parse and build functions generated from the construct structs.

`wire.schema` stays the declarative schema. Interpreting it costs more than a loopback
round trip on a hot request (STYLE.md §3). construct's own `.compile()` gains nothing for
our classes, which carry Kafka's length, count and tagged-field rules in Python methods,
and giving them `_emitparse` would keep what dominates its compiled code: a stream read
per field. So this module walks the same `Message` objects once per (message, version)
and writes the Python source a careful hand would: reads by offset from the frame (bytes
or memoryview), one `struct` call per run of fixed-width fields, one-byte varints inline,
dict literals for structs. `message_struct(name, version).codec.source` shows it.

The generated code keeps the interpreter's rules: a length or count is checked against
the bytes left before anything is allocated, and every failure to decode is a
MalformedFrame. tests/wire/test_compiled.py proves both paths give the same values, the
same bytes and the same refusals on every declared API and version.
"""

from __future__ import annotations

import math
import struct
from contextlib import contextmanager
from typing import Any, Iterator

from construct import Construct

from ottla.wire.errors import MalformedFrame
from ottla.wire.primitives import Array, Bool, Buffer, Bytes, Fixed, Region, Spliced, String, Uuid, encode_uvarint
from ottla.wire.structs import Codec, Message, NullableStruct

_MISSING = object()
# Unsigned varints below 128 are one byte; most lengths and counts are.
_SMALL = tuple(bytes((i,)) for i in range(128))


def _uvarint(data: Any, pos: int) -> tuple[int, int]:
    """The multi-byte case of the inlined varint read (same rule as primitives.read_uvarint)."""
    result = shift = 0
    for index in range(pos, pos + 5):
        byte = data[index]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, index + 1
        shift += 7
    raise MalformedFrame("varint longer than 5 bytes")


def _skip_tags(data: Any, pos: int, size: int) -> int:
    """Skip a tagged-field section with no tag this struct knows (KIP-482)."""
    count, pos = _uvarint(data, pos)
    for _ in range(count):
        _, pos = _uvarint(data, pos)
        length, pos = _uvarint(data, pos)
        if length > size - pos:
            raise MalformedFrame(f"tagged field of {length} bytes runs past the end")
        pos += length
    return pos


def _splice(out: list[Buffer], parts: list[bytes | Region], spliced: Spliced) -> None:
    """Buffers join the bytes being built; anything else (a file region) stands alone."""
    for part in spliced.parts:
        if isinstance(part, (bytes, bytearray, memoryview)):
            out.append(part)
            continue
        chunk = b"".join(out)
        out.clear()
        if chunk:
            parts.append(chunk)
        parts.append(part)


class _Repeated(dict[int, struct.Struct]):
    """Structs for arrays of one fixed-width type, by count: `>3i` for three int32s.
    Small counts are kept, since building a format per call costs more than the unpack."""

    def __init__(self, code: str) -> None:
        super().__init__()
        self.code = code

    def __missing__(self, count: int) -> struct.Struct:
        layout = struct.Struct(f">{count}{self.code}")
        if count < 64:
            self[count] = layout
        return layout


_HELPERS: dict[str, Any] = {
    "MalformedFrame": MalformedFrame,
    "_MISSING": _MISSING,
    "_SMALL": _SMALL,
    "_uvarint": _uvarint,
    "_uv": encode_uvarint,
    "_skip_tags": _skip_tags,
    "_splice": _splice,
    "_Spliced": Spliced,
    "_ERRORS": (struct.error, IndexError, UnicodeDecodeError),
}


def compile_message(message: Message) -> Codec:
    gen = _Generator()
    source = "\n".join(gen.parse_function(message) + gen.build_function(message, False) + gen.build_function(message, True))
    namespace = {**_HELPERS, **gen.constants}
    exec(compile(source, "<wire.compiler>", "exec"), namespace)
    return Codec(namespace["parse"], namespace["build"], namespace["build_parts"], source)


def _fixed_code(con: Construct) -> str | None:
    """The `struct` format letter of a fixed-width field, None for anything else."""
    if isinstance(con, Fixed):
        return str(con._struct.format[1:])
    if isinstance(con, Bool):
        return "?"  # unpacks any non-zero byte as True, as Bool does
    if isinstance(con, Uuid):
        return "16s"
    return None


class _Generator:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 0
        self.constants: dict[str, Any] = {}
        self._names = 0
        self._structs: dict[tuple[str, str], str] = {}
        self.uses_view = False  # a records field: parse() slices a memoryview of the frame
        self.parts = False  # building for encode_parts: records may be Spliced

    # Source plumbing.

    def line(self, text: str) -> None:
        self.lines.append("    " * self.depth + text)

    @contextmanager
    def block(self, header: str) -> Iterator[None]:
        self.line(header)
        self.depth += 1
        yield
        self.depth -= 1

    def fresh(self, stem: str) -> str:
        self._names += 1
        return f"{stem}{self._names}"

    def constant(self, value: Any) -> str:
        name = self.fresh("_k")
        self.constants[name] = value
        return name

    def literal(self, value: Any) -> str:
        """Source for a default value; mutable ones are written out so each use is fresh."""
        if value == [] or value == {} or value is None or isinstance(value, (bool, int, str, bytes)):
            return repr(value)
        if isinstance(value, float) and math.isfinite(value):
            return repr(value)
        return self.constant(value)

    def struct_call(self, fmt: str, method: str) -> str:
        """A bound method of one precompiled `struct.Struct` per format, named once."""
        key = (fmt, method)
        if key not in self._structs:
            self._structs[key] = self.constant(getattr(struct.Struct(">" + fmt), method))
        return self._structs[key]

    def repeated(self, code: str) -> str:
        key = (code, "repeated")
        if key not in self._structs:
            self._structs[key] = self.constant(_Repeated(code))
        return self._structs[key]

    def _take(self) -> list[str]:
        lines, self.lines = self.lines, []
        return lines

    # Parsing: `data` is the frame, `pos` the read offset, `size` the frame's length.

    def parse_function(self, message: Message) -> list[str]:
        self.depth = 1
        with self.block("try:"):
            result = self.parse_message(message, "")
        with self.block("except _ERRORS as exc:"):
            self.line('raise MalformedFrame(f"truncated or invalid: {exc}") from exc')
        self.line(f"return {result}, pos")
        body = self._take()
        self.depth = 0
        view = ["    view = memoryview(data)"] if self.uses_view else []
        return ["def parse(data, pos):", "    size = len(data)", *view, *body]

    def fail(self, condition: str, message: str) -> None:
        self.line(f"if {condition}: raise MalformedFrame({message})")

    def read_uvarint(self, target: str) -> None:
        self.line(f"{target} = data[pos]")
        self.line("pos += 1")
        # Two-byte varints inline too: a produced batch of 127 bytes to 16 KiB has a two-byte
        # length, and the call cost a single-record Produce 2.5k instructions.
        with self.block(f"if {target} > 127:"):
            with self.block("if data[pos] < 128:"):
                self.line(f"{target} += (data[pos] << 7) - 128")
                self.line("pos += 1")
            with self.block("else:"):
                self.line(f"{target}, pos = _uvarint(data, pos - 1)")

    def read_count(self, con: Array | String | Bytes, target: str) -> None:
        """A length or count: uvarint n + 1 when compact, else int16 (strings) or int32."""
        if con.compact:
            self.read_uvarint(target)
            self.line(f"{target} -= 1")
        else:
            fmt = "h" if isinstance(con, String) else "i"
            self.line(f"{target}, = {self.struct_call(fmt, 'unpack_from')}(data, pos)")
            self.line(f"pos += {struct.calcsize('>' + fmt)}")

    def parse_message(self, message: Message, path: str) -> str:
        entries: list[tuple[str, str]] = []
        run: list[tuple[str, str]] = []

        def flush() -> None:
            if run:
                names = [self.fresh("v") for _ in run]
                fmt = "".join(code for _, code in run)
                self.line(f"{', '.join(names)}, = {self.struct_call(fmt, 'unpack_from')}(data, pos)")
                self.line(f"pos += {struct.calcsize('>' + fmt)}")
                entries.extend((name, var) for (name, _), var in zip(run, names))
                run.clear()

        for name, con, _ in message.fields:
            code = _fixed_code(con)
            if code is not None:
                run.append((name, code))
                continue
            flush()
            entries.append((name, self.parse_value(con, f"{path}{name}")))
        flush()
        entries.extend((name, self.literal(default)) for _, name, _, default in message.tagged)
        target = self.fresh("m")
        self.line(f"{target} = {{{', '.join(f'{name!r}: {value}' for name, value in entries)}}}")
        if message.flexible:
            self.parse_tags(message, target, path)
        return target

    def parse_tags(self, message: Message, target: str, path: str) -> None:
        with self.block("if data[pos] == 0:"):
            self.line("pos += 1")  # no tagged fields: the usual case
        if not message.tagged:
            with self.block("else:"):
                self.line("pos = _skip_tags(data, pos, size)")
            return
        with self.block("else:"):
            count, tag, length, stop = self.fresh("t"), self.fresh("tag"), self.fresh("n"), self.fresh("stop")
            self.read_uvarint(count)
            with self.block(f"for _ in range({count}):"):
                self.read_uvarint(tag)
                self.read_uvarint(length)
                self.fail(f"{length} > size - pos", f'f"tagged field {{{tag}}} of {{{length}}} bytes runs past the end"')
                self.line(f"{stop} = pos + {length}")
                keyword = "if"
                for number, name, con, _ in message.tagged:
                    with self.block(f"{keyword} {tag} == {number}:"):
                        self.line(f"{target}[{name!r}] = {self.parse_value(con, path + name)}")
                        self.fail(f"pos != {stop}", f'f"{path}{name}: tagged field is not {{{length}}} bytes long"')
                    keyword = "elif"
                with self.block("else:"):
                    self.line(f"pos = {stop}")  # unknown tags are skipped, as KIP-482 requires

    def parse_value(self, con: Construct, path: str) -> str:
        """Emit code that reads one value at `pos`; returns the variable that holds it."""
        if isinstance(con, Message):
            return self.parse_message(con, path + ".")
        target = self.fresh("v")
        code = _fixed_code(con)
        if code is not None:
            self.line(f"{target}, = {self.struct_call(code, 'unpack_from')}(data, pos)")
            self.line(f"pos += {struct.calcsize('>' + code)}")
        elif isinstance(con, NullableStruct):
            # KIP-893: any negative marker byte is null, as Kafka's generated readers take it.
            with self.block("if data[pos] > 127:"):
                self.line("pos += 1")
                self.line(f"{target} = None")
            with self.block("else:"):
                self.line("pos += 1")
                self.line(f"{target} = {self.parse_message(con.struct, path + '.')}")
        elif isinstance(con, (String, Bytes)):
            self.parse_lengthed(con, target, path)
        elif isinstance(con, Array):
            self.parse_array(con, target, path)
        else:
            raise TypeError(f"cannot compile {con!r}")
        return target

    def null_or_fail(self, con: Array | String | Bytes, length: str, target: str, path: str, what: str) -> None:
        with self.block(f"if {length} < 0:"):
            if con.nullable:
                self.fail(f"{length} != -1", f'f"{path}: invalid {what} {{{length}}}"')
                self.line(f"{target} = None")
            else:
                self.line(f'raise MalformedFrame(f"{path}: invalid {what} {{{length}}}")')

    def parse_lengthed(self, con: String | Bytes, target: str, path: str) -> None:
        length = self.fresh("n")
        self.read_count(con, length)
        self.null_or_fail(con, length, target, path, "length")
        with self.block(f"elif {length} > size - pos:"):
            self.line(f'raise MalformedFrame(f"{path}: length {{{length}}} runs past the end")')
        with self.block("else:"):
            piece = f"[pos:pos + {length}]"
            if isinstance(con, String):
                self.line(f"{target} = str(data{piece}, 'utf-8')")
            elif con.zero_copy:
                self.uses_view = True
                self.line(f"{target} = view{piece}")  # records stay a view of the frame
            else:
                self.line(f"{target} = bytes(data{piece})")
            self.line(f"pos += {length}")

    def parse_array(self, con: Array, target: str, path: str) -> None:
        count = self.fresh("c")
        self.read_count(con, count)
        self.null_or_fail(con, count, target, path, "array count")
        # Each element takes at least min_element_size bytes: refuse before allocating.
        with self.block(f"elif {count} * {con.min_element_size} > size - pos:"):
            self.line(f'raise MalformedFrame(f"{path}: array count {{{count}}} runs past the end")')
        with self.block("else:"):
            code = _fixed_code(con.element)
            if code is not None and not isinstance(con.element, Uuid):
                self.line(f"{target} = list({self.repeated(code)}[{count}].unpack_from(data, pos))")
                self.line(f"pos += {count} * {struct.calcsize('>' + code)}")
            else:
                self.line(f"{target} = []")
                with self.block(f"for _ in range({count}):"):
                    self.line(f"{target}.append({self.parse_value(con.element, path)})")

    # Building: `w` appends to the list of byte strings joined at the end.

    def build_function(self, message: Message, parts: bool) -> list[str]:
        self.parts = parts
        self.depth = 1
        self.build_message(message, "value", "w")
        body = self._take()
        if parts:
            return [
                "def build_parts(value):",
                "    out = []",
                "    parts = []",
                "    w = out.append",
                *body,
                '    tail = b"".join(out)',
                "    if tail:",
                "        parts.append(tail)",
                "    return parts",
            ]
        return ["def build(value):", "    out = []", "    w = out.append", *body, '    return b"".join(out)']

    def write_count(self, con: Array | String | Bytes, length: str, w: str) -> None:
        if con.compact:
            size = self.fresh("k")
            self.line(f"{size} = {length} + 1")
            self.line(f"{w}(_SMALL[{size}] if {size} < 128 else _uv({size}))")
        else:
            fmt = "h" if isinstance(con, String) else "i"
            self.line(f"{w}({self.struct_call(fmt, 'pack')}({length}))")

    def write_null(self, con: Array | String | Bytes, w: str) -> None:
        if con.compact:
            self.line(f'{w}(b"\\x00")')
        else:
            self.line(f"{w}({self.struct_call('h' if isinstance(con, String) else 'i', 'pack')}(-1))")

    def build_message(self, message: Message, value: str, w: str) -> None:
        get = self.fresh("g")
        self.line(f"{get} = {value}.get")
        run: list[tuple[str, str]] = []

        def flush() -> None:
            if run:
                fmt = "".join(code for code, _ in run)
                self.line(f"{w}({self.struct_call(fmt, 'pack')}({', '.join(arg for _, arg in run)}))")
                run.clear()

        for name, con, default in message.fields:
            field = f"{get}({name!r}, {self.literal(default)})"
            code = _fixed_code(con)
            if isinstance(con, Uuid):
                # "16s" would pad or cut a wrong-sized id; Uuid refuses it.
                uuid = self.fresh("u")
                self.line(f"{uuid} = {field}")
                self.line(f'if len({uuid}) != 16: raise ValueError("a uuid is 16 bytes")')
                field = uuid
            if code is not None:
                run.append((code, field))
                continue
            flush()
            self.build_value(con, field, w)
        flush()
        if message.flexible:
            self.build_tags(message, get, w)

    def build_tags(self, message: Message, get: str, w: str) -> None:
        if not message.tagged:
            self.line(f'{w}(b"\\x00")')
            return
        tags = self.fresh("tags")
        self.line(f"{tags} = []")
        for number, name, con, default in message.tagged:
            field = self.fresh("x")
            self.line(f"{field} = {get}({name!r}, _MISSING)")
            with self.block(f"if {field} is not _MISSING and {field} != {self.literal(default)}:"):
                body, sub = self.fresh("body"), self.fresh("w")
                self.line(f"{body} = []")
                self.line(f"{sub} = {body}.append")
                self.build_value(con, field, sub, splice=False)
                self.line(f'{body} = b"".join({body})')
                self.line(f"{tags}.append(_uv({number}) + _uv(len({body})) + {body})")
        # Usually none is set: one constant byte, without a call to count them.
        with self.block(f"if {tags}:"):
            self.line(f"{w}(_uv(len({tags})))")
            self.line(f'{w}(b"".join({tags}))')
        with self.block("else:"):
            self.line(f'{w}(b"\\x00")')

    def build_value(self, con: Construct, value: str, w: str, splice: bool = True) -> None:
        """Emit code that writes the value of expression `value` through `w`."""
        if isinstance(con, Message):
            self.build_message(con, value, w)
            return
        code = _fixed_code(con)
        if code is not None:
            if isinstance(con, Uuid):
                self.build_uuid(value, w)
            else:
                self.line(f"{w}({self.struct_call(code, 'pack')}({value}))")
            return
        var = self.fresh("x")
        self.line(f"{var} = {value}")
        if isinstance(con, NullableStruct):
            with self.block(f"if {var} is None:"):
                self.line(f'{w}(b"\\xff")')
            with self.block("else:"):
                self.line(f'{w}(b"\\x01")')
                self.build_message(con.struct, var, w)
            return
        if not isinstance(con, (String, Bytes, Array)):
            raise TypeError(f"cannot compile {con!r}")
        # A None where null is not allowed fails here; schema.encode then lets the
        # interpreted struct raise its ValueError naming the rule.
        keyword = "if"
        if con.nullable:
            with self.block(f"if {var} is None:"):
                self.write_null(con, w)
            keyword = "elif"
        if isinstance(con, Bytes) and con.zero_copy and self.parts and splice:
            with self.block(f"{keyword} isinstance({var}, _Spliced):"):
                self.write_count(con, f"{var}.size", w)
                self.line(f"_splice(out, parts, {var})")
            keyword = "elif"
        if keyword == "elif":
            with self.block("else:"):
                self.build_present(con, var, w, splice)
        else:
            self.build_present(con, var, w, splice)

    def build_present(self, con: Construct, var: str, w: str, splice: bool) -> None:
        """A string, bytes or array value known not to be null."""
        if isinstance(con, String):
            encoded = self.fresh("b")
            self.line(f"{encoded} = {var}.encode('utf-8')")
            self.write_count(con, f"len({encoded})", w)
            self.line(f"{w}({encoded})")
        elif isinstance(con, Bytes):
            self.write_count(con, f"len({var})", w)
            self.line(f"{w}({var})")
        elif isinstance(con, Array):
            self.write_count(con, f"len({var})", w)
            element = _fixed_code(con.element)
            if element is not None and not isinstance(con.element, Uuid):
                self.line(f"{w}({self.repeated(element)}[len({var})].pack(*{var}))")
            else:
                item = self.fresh("e")
                with self.block(f"for {item} in {var}:"):
                    self.build_value(con.element, item, w, splice)
        else:
            raise TypeError(f"cannot compile {con!r}")

    def build_uuid(self, value: str, w: str) -> None:
        uuid = self.fresh("u")
        self.line(f"{uuid} = {value}")
        self.line(f'if len({uuid}) != 16: raise ValueError("a uuid is 16 bytes")')
        self.line(f"{w}({uuid})")
