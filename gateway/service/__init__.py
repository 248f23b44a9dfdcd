"""The long-lived gateway: one dispatch-and-poll cycle on Twisted, scheduled by APScheduler."""
