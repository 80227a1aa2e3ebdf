"""Dataset delivery between institutions: sites, the peer file protocol, the provider
and consumer sides, and the consumer's state machine."""
