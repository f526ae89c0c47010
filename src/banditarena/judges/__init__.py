"""banditarena.judges"""
