"""The pure scoring core: events, the scoring model, windows, bands and alert rules.

Nothing in this package performs I/O or imports Faust, Redis or Kafka.
"""
