"""banditarena.laser"""
