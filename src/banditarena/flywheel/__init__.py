"""banditarena.flywheel"""
