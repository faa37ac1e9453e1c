"""pgoutbox benchmarks: ``python -m benchmarks <command> --help``.

Every command runs against the real PostgreSQL and RabbitMQ in a scratch database it creates
and drops, bounds itself in time, and writes one JSON file (and a PNG) under
``benchmarks/results/``.
"""
