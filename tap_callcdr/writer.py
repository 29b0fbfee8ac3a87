"""Singer messages with msgspec, buffered: written out with every STATE and at the end.

The SDK's writers write and flush stdout once per message, a system call per record. A
target acts on a STATE only after the records before it, so delivering lines in batches,
always up to and including each STATE (and at exit), keeps the same order at a fraction
of the cost. A run killed between two STATEs loses only lines its last STATE does not
cover, which the next run reads again.
"""

from __future__ import annotations

import sys
import typing as t
import weakref

from singer_sdk.contrib.msgspec import MsgSpecWriter, encoder
from singer_sdk.helpers._util import utc_now
from singer_sdk.singerlib.messages import SingerMessageType

if t.TYPE_CHECKING:
    from singer_sdk.singerlib.encoding.simple import Message

BATCH_BYTES = 256 * 1024  # lines held before writing them out anyway


class BufferedMsgspecWriter(MsgSpecWriter):
    """msgspec-encoded lines, written in batches; stdout is flushed with every STATE."""

    _live: t.ClassVar[weakref.WeakSet[BufferedMsgspecWriter]] = weakref.WeakSet()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._live.add(self)

    def write_message(self, message: Message) -> None:
        line = bytes(self.format_message(message))  # the SDK reuses its bytearray
        self._add(line, is_state=message.type == SingerMessageType.STATE)

    def write_record(self, stream: str, record: dict[str, t.Any], version: int | None) -> None:
        """A RECORD line, byte for byte what `RecordMessage(...).to_dict()` encodes to, without
        building the message object (the encoder and field order are the SDK's)."""
        head, tail = self._record_line_ends(stream, version)
        self._add(head + encoder.encode(record) + tail, is_state=False)

    def record_writer(self, stream: str, version: int | None) -> t.Callable[[dict[str, t.Any]], None]:
        """`write_record` for a batch of one stream's records, stamped with one time_extracted:
        the line's head and tail are encoded once, each record on its own."""
        head, tail = self._record_line_ends(stream, version)
        encode, add = encoder.encode, self._add

        def write(record: dict[str, t.Any]) -> None:
            add(head + encode(record) + tail, is_state=False)

        return write

    def encoded_record_writer(self, stream: str, version: int | None) -> t.Callable[[bytes], None]:
        """`record_writer` for records encoded already (the same encoder's JSON)."""
        head, tail = self._record_line_ends(stream, version)
        add = self._add

        def write(record: bytes) -> None:
            add(head + record + tail, is_state=False)

        return write

    @staticmethod
    def _record_line_ends(stream: str, version: int | None) -> tuple[bytes, bytes]:
        """A RECORD line is head + the record's JSON + tail, as RecordMessage.to_dict() encodes."""
        head = b'{"type":"RECORD","stream":' + encoder.encode(stream) + b',"record":'
        tail = b',"version":' + encoder.encode(version) if version is not None else b""
        return head, tail + b',"time_extracted":' + encoder.encode(utc_now()) + b"}\n"

    def _add(self, line: bytes, *, is_state: bool) -> None:
        self._pending.append(line)
        self._pending_bytes += len(line)
        if is_state or self._pending_bytes >= BATCH_BYTES:
            self.flush(to_target=is_state)

    def flush(self, *, to_target: bool = True) -> None:
        """Write what is pending; with `to_target`, push it through to the target too."""
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        out = sys.stdout
        binary = getattr(out, "buffer", None)
        if binary is not None:
            binary.write(data)
        else:  # a text-only stdout (e.g. redirected to StringIO in tests)
            out.write(data.decode())
        if to_target:
            out.flush()

    @classmethod
    def flush_all(cls) -> None:
        """At exit, whatever happened: every line written reaches the target."""
        for writer in list(cls._live):
            writer.flush()
