"""The peers' side of ``benchmarks floor``: a Django project run by the peers' own virtualenv
(django-jaiminho and django-outbox-pattern from PyPI, see :mod:`benchmarks.peers`), never by
pgoutbox's. Nothing here imports pgoutbox."""
