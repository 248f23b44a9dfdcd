"""The yikatong gateway service: database, pipeline, transports, scheduler, admin API, CLI."""
