"""The `ottla` subcommands for a person at a terminal: a small blocking Kafka client built on
`wire/` (the same codec the broker serves with, used here from the client side), so they work
against any broker, Ottla or Apache Kafka."""
