"""banditarena.curriculum"""
