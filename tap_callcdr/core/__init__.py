"""The shared core every vendor builds on: the base stream, the window engine, times to
UTC, fields, errors and their policy, settings and state checks. It imports no vendor."""
