"""The OpenAI chat-completions protocol over the service's own engine path (``/v1``)."""
