"""The LTX-2 pipeline stages (names and options follow FastVideo's LTX-2 stages page)."""
