"""The asyncio broker: framing, dispatch, handlers, coordinators, configuration. `ottla.Broker`
is its entry point for embedding."""
