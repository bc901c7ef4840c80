"""Security as Kafka does it: the transport (listeners, TLS, who the peer is), authentication
and authorization. `listeners` says which sockets exist and what protocol each speaks; `tls`
builds the SSL contexts and principals of SSL and SASL_SSL listeners."""
