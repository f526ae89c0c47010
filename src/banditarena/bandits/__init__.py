"""banditarena.bandits"""
