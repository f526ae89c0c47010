"""banditarena.ratings"""
