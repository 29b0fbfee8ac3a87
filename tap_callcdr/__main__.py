from tap_callcdr.tap import TapCallCDR

TapCallCDR.cli()
