"""The operations layer: the one place that runs validate -> plan -> apply.

The CLI and the REST server are thin translators of argv and HTTP into these
calls; neither holds logic of its own. Operations never print: they report
progress through a :class:`~corral.ops.reporting.Reporter` and return data.
"""
