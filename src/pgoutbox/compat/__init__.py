"""Drop-in module paths for the libraries pgoutbox replaces, and their settings translations.

``pgoutbox.compat.jaiminho.*`` stands for ``jaiminho.*`` and ``pgoutbox.compat.outbox_pattern.*``
for ``django_outbox_pattern.*``: switching is an import change. The packages' ``__init__``
modules import only the settings translations (pure functions, no Django settings access), so
``pgoutbox.conf`` can use them without importing the producer or the consumer.
"""
