"""banditarena.store"""
