"""``jaiminho.constants``: the publish strategies' names, as jaiminho spells them."""

from __future__ import annotations


class PublishStrategyType:
    """The values of ``PUBLISH_STRATEGY`` and of ``save_to_outbox_stream``'s
    ``overwrite_strategy_with``."""

    PUBLISH_ON_COMMIT = "publish-on-commit"
    KEEP_ORDER = "keep-order"

    CHOICES = ((PUBLISH_ON_COMMIT, "Publish on Commit"), (KEEP_ORDER, "Keep Order"))
