"""Training loops: the generator (the game) and the victim (evaluation)."""
