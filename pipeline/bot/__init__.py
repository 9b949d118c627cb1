"""The bot: branch history, deciding which pins to bump, and forges that open merge requests."""
