"""Singer messages with msgspec, buffered: written out with every STATE and at the end.

The SDK's writers write and flush stdout once per message, a system call per record. A
target acts on a STATE only after the records before it, so delivering lines in batches,
always up to and including each STATE (and at exit), keeps the same order at a fraction
of the cost. A run killed between two STATEs loses only lines its last STATE does not
cover, which the next run reads again.

Every write to stdout is whole lines and atomic on a pipe: at most PIPE_BUF bytes, or one
whole line when a line is longer (see `chunk_end`). A pipe write over PIPE_BUF bytes is not
atomic: SIGKILL while it blocks would leave half a line, on which a target fails without
emitting its last state, and the run's checkpoints are lost.
"""

from __future__ import annotations

import os
import select
import sys
import typing as t
import weakref

from singer_sdk.contrib.msgspec import MsgSpecWriter, encoder
from singer_sdk.singerlib.messages import SingerMessageType

from tap_callcdr.fastpath.sdk import utc_now

if t.TYPE_CHECKING:
    from singer_sdk.singerlib.encoding.simple import Message

BATCH_BYTES = 256 * 1024  # lines held before writing them out anyway
PIPE_BUF = min(getattr(select, "PIPE_BUF", 4096), 4096)  # the most one write may carry (POSIX: atomic)


def chunk_end(data: bytes, start: int) -> int:
    """Where the next write of `data` (whole lines) from `start` ends: after the most whole
    lines that fit in PIPE_BUF bytes, or after the one line there when it is longer."""
    if len(data) - start <= PIPE_BUF:
        return len(data)
    cut = data.rfind(b"\n", start, start + PIPE_BUF)
    if cut < 0:  # one line longer than PIPE_BUF: it goes alone, whole
        cut = data.find(b"\n", start + PIPE_BUF)
    return cut + 1 if cut >= 0 else len(data)  # (every line ends with a newline)


class BufferedMsgspecWriter(MsgSpecWriter):
    """msgspec-encoded lines, written in batches of whole lines; stdout is flushed with every STATE."""

    _live: t.ClassVar[weakref.WeakSet[BufferedMsgspecWriter]] = weakref.WeakSet()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._unsent, self._sent = b"", 0  # lines being written out; bytes of them written
        self._writing = False
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
            self.flush()

    def flush(self) -> None:
        """Write what is pending through to the target: straight to stdout's file descriptor,
        in whole-line writes (module docstring)."""
        out = sys.stdout
        try:
            fd = out.fileno()
        except (AttributeError, OSError, ValueError):  # no descriptor (e.g. a StringIO in tests)
            self._write_to_stream(out)
            return
        out.flush()  # whatever went through Python's buffers comes first
        self._write_to_fd(fd)

    def _write_to_fd(self, fd: int) -> None:
        """Pending lines to `fd`, in `chunk_end` pieces. A flush entered again mid-write (a
        signal handler writing a STATE) leaves its lines pending for the loop it interrupted:
        writing them there would put them inside the interrupted write's data. Progress is
        kept on the writer, so a flush after an exception goes on where this one stopped."""
        if self._writing:
            return
        self._writing = True
        try:
            while self._sent < len(self._unsent) or self._pending:
                if self._sent == len(self._unsent):
                    self._unsent, self._sent = b"".join(self._pending), 0
                    self._pending.clear()
                    self._pending_bytes = 0
                end = chunk_end(self._unsent, self._sent)
                try:  # os.write retries EINTR itself (PEP 475)
                    self._sent += os.write(fd, memoryview(self._unsent)[self._sent : end])
                except BlockingIOError:  # a non-blocking stdout: wait until it takes more
                    select.select([], [fd], [])
        finally:
            self._writing = False

    def _write_to_stream(self, out: t.TextIO) -> None:
        data = self._unsent[self._sent :] + b"".join(self._pending)
        self._unsent, self._sent = b"", 0
        self._pending.clear()
        self._pending_bytes = 0
        binary = getattr(out, "buffer", None)
        if binary is not None:
            binary.write(data)
        else:  # a text-only stdout
            out.write(data.decode())
        out.flush()

    @classmethod
    def flush_all(cls) -> None:
        """At exit, whatever happened: every line written reaches the target."""
        for writer in list(cls._live):
            writer.flush()
