"""Sans-IO codec for Kafka's wire protocol: no sockets, no storage, no asyncio."""
