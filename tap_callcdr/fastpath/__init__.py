"""The speed machinery: read-ahead, the batch loop, row workers, the buffered writer,
the conformance check, the HTTP session and JSON bodies. It imports no vendor."""
