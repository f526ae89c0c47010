"""banditarena.arena"""
