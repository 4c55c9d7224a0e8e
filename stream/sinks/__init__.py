"""Where everything the pipeline computes is written: rows online and offline, the archive.

Each sink has one contract (stream/sinks/base.py): `setup()`, `write(flush)`, `close()`, every
write idempotent and retried while its store is away. The writer process
(stream/sinks/writer.py) holds them for the worker and for replay alike.
"""
