"""Avro schemas (.avsc) and single-object (de)serialisation of event envelopes."""
