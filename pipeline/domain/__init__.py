"""Pure domain: aggregates, commands, events, value objects. No I/O, no Faust, no Kafka."""
