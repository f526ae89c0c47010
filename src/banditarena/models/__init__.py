"""banditarena.models"""
