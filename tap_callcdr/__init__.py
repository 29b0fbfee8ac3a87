"""tap-callcdr: a Singer tap for telephony call detail records."""
