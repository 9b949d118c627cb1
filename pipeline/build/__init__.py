"""Component builders: turn a pin (a dist-git commit) into binary and source RPMs."""
